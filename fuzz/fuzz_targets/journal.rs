//! The journal reader: any bytes give a journal or a refusal naming the line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    drpilot_chaos::fuzzing::journal(bytes);
});
