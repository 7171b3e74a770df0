//! Command-line helpers shared by the load tools (each a binary of its own).

/// Prints `problem` and the tool's usage, and exits with status 2.
pub fn usage_error(usage: &str, problem: &str) -> ! {
    let program = std::env::args()
        .next()
        .and_then(|p| p.rsplit('/').next().map(str::to_string))
        .unwrap_or_default();
    eprintln!("{program}: {problem}\n{usage}");
    std::process::exit(2)
}

/// The whole number after `flag`, or a usage error.
pub fn number(usage: &str, flag: &str, value: Option<String>) -> u64 {
    let value = value.unwrap_or_else(|| usage_error(usage, &format!("{flag} needs a value")));
    value
        .parse()
        .unwrap_or_else(|_| usage_error(usage, &format!("{flag}: {value:?} is not a whole number")))
}
