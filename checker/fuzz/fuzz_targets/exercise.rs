//! What every reader's fuzz target does with its input: read it in one format, and when it
//! reads, pair it into ops and run the fencing check and the stats over it. Any input may
//! be rejected; none may panic or overflow the stack.

use faultline_checker::format::{self, Format};

pub fn read_in(format: Format, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(h) = format::read_str(&text, None, format) {
        let _ = h.ops();
        let _ = faultline_checker::fencing::check(&h);
        let _ = faultline_checker::stats::compute(&h);
    }
}
