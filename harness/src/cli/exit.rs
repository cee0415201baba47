//! Process exit codes, shared by every subcommand (README, "Exit codes").

pub const VALID: u8 = 0;
pub const INVALID: u8 = 1;
pub const UNKNOWN: u8 = 2;
/// Bad input (unreadable or malformed history, bad flags) or a run that failed.
pub const BAD_INPUT: u8 = 3;
