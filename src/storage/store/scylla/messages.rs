//! The message log: messages by contact with their delivery status, in the CQL store.

use super::*;
use scylla::value::CqlTimestamp;

#[async_trait]
impl MessageLog for ScyllaStore {
    async fn put_message(&self, message: &MessageRecord) -> Result<(), StoreError> {
        self.write_partitions(&[], std::slice::from_ref(message), &[], Absent::Clear)
            .await
    }
    async fn put_messages(&self, messages: &[MessageRecord]) -> Result<(), StoreError> {
        self.write_partitions(&[], messages, &[], Absent::Clear)
            .await
    }
    async fn message(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        const OP: &str = "message";
        let rows: Vec<MessageRow> = self
            .rows(OP, &self.st.messages.message, (contact.as_str(), wamid))
            .await?;
        if let Some(message) = rows.into_iter().next() {
            if let Some(message) = message.into_message()? {
                return Ok(Some(message));
            }
        }
        let inbound: Vec<InboundRow> = self
            .rows(
                OP,
                &self.st.messages.inbound_by_wamid,
                (contact.as_str(), wamid),
            )
            .await?;
        inbound
            .into_iter()
            .next()
            .map(InboundRow::into_message)
            .transpose()
    }
    async fn inbound_stored(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
        wamid: &str,
    ) -> Result<bool, StoreError> {
        const OP: &str = "inbound_stored";
        let exact: Vec<(String,)> = self
            .rows(
                OP,
                &self.st.messages.inbound_exact,
                (contact.as_str(), at, wamid),
            )
            .await?;
        if !exact.is_empty() {
            return Ok(true);
        }
        // Stored before migration 6: in `messages`, by wamid.
        let older: Vec<MessageRow> = self
            .rows(OP, &self.st.messages.message, (contact.as_str(), wamid))
            .await?;
        Ok(!older.is_empty())
    }
    async fn messages(
        &self,
        contact: &PhoneNumber,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        const OP: &str = "messages";
        if limit == 0 {
            return Ok(vec![]);
        }
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // Inbound messages have their own table; outbound ones (and inbound ones stored
        // before it) are in `messages`, found through the time index.
        let (index, inbound) = futures::try_join!(
            self.rows::<(String,)>(
                OP,
                &self.st.messages.message_index,
                (contact.as_str(), limit)
            ),
            self.rows::<InboundRow>(
                OP,
                &self.st.messages.inbound_newest,
                (contact.as_str(), limit)
            ),
        )?;
        // Newest first; a message replayed with another created_at has two index rows.
        let mut order: Vec<String> = Vec::with_capacity(index.len());
        for (wamid,) in index {
            if !order.contains(&wamid) {
                order.push(wamid);
            }
        }
        let chunks = order.chunks(IN_CHUNK).map(|chunk| {
            self.rows::<MessageRow>(
                OP,
                &self.st.messages.messages_in,
                (contact.as_str(), chunk.to_vec()),
            )
        });
        let mut by_wamid: HashMap<String, MessageRecord> = HashMap::new();
        for rows in futures::future::try_join_all(chunks).await? {
            for row in rows {
                if let Some(message) = row.into_message()? {
                    by_wamid.insert(message.wamid.clone(), message);
                }
            }
        }
        let mut newest: Vec<MessageRecord> = order
            .into_iter()
            .filter_map(|wamid| by_wamid.remove(&wamid))
            .collect();
        for row in inbound {
            newest.push(row.into_message()?);
        }
        // Stable: on a tie the `messages` row (with its reports) comes first and stays.
        newest.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.wamid.cmp(&b.wamid))
        });
        let mut seen = HashSet::new();
        newest.retain(|m| seen.insert(m.wamid.clone()));
        newest.truncate(wanted);
        Ok(newest)
    }
    async fn record_status(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        self.status_write(
            "record_status",
            contact.as_str(),
            wamid,
            status,
            at,
            error_code,
        )
        .await
    }
    /// Reads the whole log (a filtering scan, page by page: a background sweep's cost, once
    /// per sweep) and clears the old bodies in `messages` and `inbound_messages`.
    async fn expire_message_bodies(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const OP: &str = "expire_message_bodies";
        let ks = &self.keyspace;
        let prepare = |cql: String| prepare(&self.session, cql, Kind::Idempotent);
        let (old_messages, clear_message, old_inbound, clear_inbound) = futures::try_join!(
            prepare(format!("SELECT contact, wamid FROM {ks}.messages WHERE created_at < ? AND body > '' ALLOW FILTERING")),
            prepare(format!("UPDATE {ks}.messages SET body = null WHERE contact = ? AND wamid = ?")),
            prepare(format!("SELECT contact, created_at, wamid FROM {ks}.inbound_messages WHERE created_at < ? AND body > '' ALLOW FILTERING")),
            prepare(format!("UPDATE {ks}.inbound_messages SET body = null WHERE contact = ? AND created_at = ? AND wamid = ?")),
        )?;
        let cutoff = CqlTimestamp(before.timestamp_millis());
        let mut cleared = 0;
        let rows: Vec<(String, String)> = self.all_rows(OP, &old_messages, (cutoff,)).await?;
        for (contact, wamid) in rows {
            self.exec(OP, &clear_message, (&contact, &wamid)).await?;
            cleared += 1;
        }
        let rows: Vec<(String, CqlTimestamp, String)> =
            self.all_rows(OP, &old_inbound, (cutoff,)).await?;
        for (contact, created_at, wamid) in rows {
            self.exec(OP, &clear_inbound, (&contact, created_at, &wamid))
                .await?;
            cleared += 1;
        }
        Ok(cleared)
    }
}

impl ScyllaStore {
    /// One delivery report as a blind write with the [`status_timestamp`] rule. A failure
    /// with a provider error code writes the code in the same cell write as its time, so the
    /// code of the earliest failure report that carries one wins.
    pub(super) async fn status_write(
        &self,
        operation: &'static str,
        contact: &str,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        match self.status_statement(contact, wamid, status, at, error_code) {
            Some((statement, values)) => self.exec(operation, statement, values).await.map(drop),
            None => Ok(()),
        }
    }

    /// The statement and values of one delivery report; `None` for "accepted", the state
    /// before any report. A failure with a provider error code writes the code in the same
    /// cell write as its time.
    pub(super) fn status_statement<'a>(
        &'a self,
        contact: &'a str,
        wamid: &'a str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Option<(&'a PreparedStatement, BoxedRow<'a>)> {
        let timestamp = status_timestamp(at);
        let statement = match status {
            DeliveryStatus::Accepted => return None,
            DeliveryStatus::Sent => &self.st.messages.sent,
            DeliveryStatus::Delivered => &self.st.messages.delivered,
            DeliveryStatus::Read => &self.st.messages.read,
            DeliveryStatus::Failed => match error_code {
                Some(code) => {
                    let values = (timestamp, at, code, contact, wamid);
                    return Some((&self.st.messages.failed_with_code, Box::new(values)));
                }
                None => &self.st.messages.failed,
            },
        };
        Some((statement, Box::new((timestamp, at, contact, wamid))))
    }
}

/// The prepared statements of this aggregate.
pub(super) struct MessageStatements {
    pub(super) put_message: PreparedStatement,
    pub(super) put_message_index: PreparedStatement,
    pub(super) message: PreparedStatement,
    pub(super) message_index: PreparedStatement,
    pub(super) messages_in: PreparedStatement,
    pub(super) put_inbound: PreparedStatement,
    pub(super) inbound_newest: PreparedStatement,
    pub(super) inbound_by_wamid: PreparedStatement,
    pub(super) inbound_exact: PreparedStatement,
    pub(super) sent: PreparedStatement,
    pub(super) delivered: PreparedStatement,
    pub(super) read: PreparedStatement,
    pub(super) failed: PreparedStatement,
    pub(super) failed_with_code: PreparedStatement,
}

impl MessageStatements {
    pub(super) async fn prepare(s: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::Idempotent as I;
        let status = |column: &str| {
            format!(
                "UPDATE {ks}.messages USING TIMESTAMP ? SET {column} = ? WHERE contact = ? AND wamid = ?"
            )
        };
        let (put_message, put_message_index, message, message_index, messages_in, put_inbound, inbound_newest, inbound_by_wamid, inbound_exact, sent, delivered, read, failed, failed_with_code,) = futures::try_join!(
            prepare(s, format!("INSERT INTO {ks}.messages (contact, wamid, direction, kind, body, campaign_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"), I),
            prepare(s, format!("INSERT INTO {ks}.messages_by_time (contact, created_at, wamid) VALUES (?, ?, ?)"), I),
            prepare(s, format!("SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE contact = ? AND wamid = ?"), I),
            prepare(s, format!("SELECT wamid FROM {ks}.messages_by_time WHERE contact = ? LIMIT ?"), I),
            prepare(s, format!("SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE contact = ? AND wamid IN ?"), I),
            prepare(s, format!("INSERT INTO {ks}.inbound_messages ({INBOUND_COLUMNS}) VALUES ({})", placeholders(INBOUND_COLUMNS)), I),
            prepare(s, format!("SELECT {INBOUND_COLUMNS} FROM {ks}.inbound_messages WHERE contact = ? LIMIT ?"), I),
            // Filters within one partition: point look-ups by wamid alone are admin reads.
            prepare(s, format!("SELECT {INBOUND_COLUMNS} FROM {ks}.inbound_messages WHERE contact = ? AND wamid = ? ALLOW FILTERING"), I),
            prepare(s, format!("SELECT wamid FROM {ks}.inbound_messages WHERE contact = ? AND created_at = ? AND wamid = ?"), I),
            prepare(s, status("sent_at"), I),
            prepare(s, status("delivered_at"), I),
            prepare(s, status("read_at"), I),
            prepare(s, status("failed_at"), I),
            prepare(s, format!("UPDATE {ks}.messages USING TIMESTAMP ? SET failed_at = ?, error_code = ? WHERE contact = ? AND wamid = ?"), I),
        )?;
        Ok(MessageStatements {
            put_message,
            put_message_index,
            message,
            message_index,
            messages_in,
            put_inbound,
            inbound_newest,
            inbound_by_wamid,
            inbound_exact,
            sent,
            delivered,
            read,
            failed,
            failed_with_code,
        })
    }
}
