//! Process exit codes of the subcommands that give no verdict of their own (`report`,
//! `serve`, `image`, usage errors): the same numbers as a verdict's
//! ([`Verdict::exit_code`], the one mapping).

use crate::results::Verdict;

pub const VALID: u8 = Verdict::Valid.exit_code();
/// Bad input (unreadable files, bad flags) or a command that failed.
pub const BAD_INPUT: u8 = Verdict::Error.exit_code();
