//! The runbook reader: any bytes give a runbook or errors that point into the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    drpilot_chaos::fuzzing::runbook(bytes);
});
