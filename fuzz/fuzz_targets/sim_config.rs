//! The `--sim-config` reader: any bytes give a config or errors that point into the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    drpilot_chaos::fuzzing::sim_config(bytes);
});
