//! Fuzzes the Jepsen text-log reader.
#![no_main]

#[path = "exercise.rs"]
mod exercise;

use faultline_checker::format::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| exercise::read_in(Format::JepsenLog, data));
