//! The BankID RP API's wire types as both ends read them: the answers the client reads from
//! BankID (`auth`, `collect`, error bodies), the requests the stub reads from relying parties,
//! and the animated-QR data. Whatever parses must serialise and parse back to itself, so the
//! client and the stub cannot disagree on a message. The first byte chooses the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portvakt::bankid::api::{
    AuthRequest, CollectResponse, ErrorBody, OrderRef, OrderResponse, PhoneAuthRequest,
};
use portvakt::bankid::qr;
use serde::{Serialize, de::DeserializeOwned};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    match mode % 7 {
        0 => round_trip::<OrderResponse>(body),
        1 => round_trip::<CollectResponse>(body),
        2 => round_trip::<ErrorBody>(body),
        3 => round_trip::<AuthRequest>(body),
        4 => round_trip::<PhoneAuthRequest>(body),
        5 => round_trip::<OrderRef>(body),
        _ => {
            if let Ok(text) = std::str::from_utf8(body)
                && let Some((token, time, code)) = qr::parse(text)
            {
                assert_eq!(
                    qr::parse(&format!("bankid.{token}.{time}.{code}")),
                    Some((token, time, code))
                );
                let _ = qr::verify("a-secret", time, code);
            }
        }
    }
});

fn round_trip<T: Serialize + DeserializeOwned + PartialEq>(body: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        let wire = serde_json::to_vec(&value).expect("what parsed serialises");
        let again: T = serde_json::from_slice(&wire).expect("what we send parses");
        assert!(again == value, "a round trip changes nothing");
    }
}
