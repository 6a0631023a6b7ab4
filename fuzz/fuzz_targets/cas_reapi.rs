#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artgate_cas::fuzz::reapi(data));
