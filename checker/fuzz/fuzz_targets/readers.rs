//! Fuzzes every history reader: any input may be rejected, none may panic or overflow the
//! stack. A history that reads must also pair into ops and pass through the fencing and
//! stats code without panicking.
#![no_main]

use faultline_checker::format::{self, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for f in [Format::Auto, Format::Jsonl, Format::Edn, Format::JepsenLog] {
        if let Ok(h) = format::read_str(&text, None, f) {
            let _ = h.ops();
            let _ = faultline_checker::fencing::check(&h);
            let _ = faultline_checker::stats::compute(&h);
        }
    }
});
