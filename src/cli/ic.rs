//! `sembang ic parse`.

use std::process::ExitCode;

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::EXIT_REJECTED;
use crate::domain::mykad::{MyKad, MyKadError};

pub fn parse(number: &str, on: NaiveDate, as_json: bool) -> ExitCode {
    let result = MyKad::parse(number, on);
    if as_json {
        println!("{}", to_json(&result, on));
    } else {
        print_human(&result, on);
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EXIT_REJECTED),
    }
}

pub fn to_json(result: &Result<MyKad, MyKadError>, on: NaiveDate) -> Value {
    match result {
        Ok(ic) => json!({
            "valid": true,
            "normalized": ic.normalized(),
            "masked": ic.masked(),
            "birth_date": ic.birth_date().format("%Y-%m-%d").to_string(),
            "age": ic.age_on(on),
            "gender": ic.gender().as_str(),
            "place_of_birth_code": format!("{:02}", ic.place_of_birth_code()),
            "place_of_birth": ic.place_of_birth().name(),
            "place_of_birth_kind": ic.place_of_birth().kind(),
        }),
        Err(err) => json!({
            "valid": false,
            "error": { "kind": err.kind(), "message": err.to_string() },
        }),
    }
}

fn print_human(result: &Result<MyKad, MyKadError>, on: NaiveDate) {
    match result {
        Ok(ic) => {
            println!("valid IC number   {}", ic.normalized());
            println!("masked            {}", ic.masked());
            println!("date of birth     {}", ic.birth_date().format("%Y-%m-%d"));
            if let Some(age) = ic.age_on(on) {
                println!("age on {}  {age}", on.format("%Y-%m-%d"));
            }
            println!("gender            {}", ic.gender());
            println!(
                "place of birth    {:02} {}",
                ic.place_of_birth_code(),
                ic.place_of_birth()
                    .name()
                    .unwrap_or(ic.place_of_birth().kind())
            );
        }
        Err(err) => println!("invalid IC number: {err}"),
    }
}
