//! Reading a campaign's whole recipient ledger a page at a time.

use crate::storage::store::{ContactStore, PageToken, RecipientRow, StoreError};

/// The pages of a campaign's recipients: `while let Some(rows) = pages.next().await? {..}`.
pub struct RecipientPages<'a> {
    store: &'a dyn ContactStore,
    campaign_id: &'a str,
    size: u32,
    token: Option<PageToken>,
    done: bool,
}

impl<'a> RecipientPages<'a> {
    pub fn new(store: &'a dyn ContactStore, campaign_id: &'a str, size: u32) -> Self {
        RecipientPages {
            store,
            campaign_id,
            size,
            token: None,
            done: false,
        }
    }

    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<RecipientRow>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = crate::retry::with_retries("recipients", || {
            self.store
                .recipients(self.campaign_id, self.token.clone(), self.size)
        })
        .await?;
        self.token = page.next;
        self.done = self.token.is_none();
        Ok(Some(page.items))
    }
}
