//! BankID's recommended user messages (RFA, specs/bankid.md §9) for each hint and error
//! code, as keys of the message catalogue (`web::i18n`), which holds the Swedish and English
//! texts.

use super::api::{ErrorCode, HintCode, Status};

/// How the order was started: the QR text differs from the same-device texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// "BankID på den här enheten": autostart.
    This,
    /// "BankID på annan enhet": the animated QR code.
    Other,
}

/// The catalogue key for an order in `status` with `hint`.
pub fn for_status(status: Status, hint: Option<&HintCode>, device: Device) -> &'static str {
    use HintCode::*;
    match (status, hint) {
        (Status::Complete, _) => "bankid.rfa.done",
        (Status::Pending, Some(OutstandingTransaction)) if device == Device::This => "bankid.rfa13",
        (Status::Pending, Some(OutstandingTransaction | NoClient)) => "bankid.rfa1",
        (Status::Pending, Some(Started)) => "bankid.rfa15",
        (Status::Pending, Some(UserSign)) => "bankid.rfa9",
        (Status::Pending, Some(UserMrtd)) => "bankid.rfa23",
        (Status::Pending, _) => "bankid.rfa21",
        (Status::Failed, Some(UserCancel)) => "bankid.rfa6",
        (Status::Failed, Some(Cancelled)) => "bankid.rfa3",
        (Status::Failed, Some(ExpiredTransaction)) => "bankid.rfa8",
        (Status::Failed, Some(CertificateErr)) => "bankid.rfa16",
        (Status::Failed, Some(StartFailed)) if device == Device::This => "bankid.rfa17a",
        (Status::Failed, Some(StartFailed)) => "bankid.rfa17b",
        (Status::Failed, _) => "bankid.rfa22",
    }
}

/// The catalogue key for an error answer.
pub fn for_error(code: Option<&ErrorCode>) -> &'static str {
    match code {
        Some(ErrorCode::AlreadyInProgress) => "bankid.rfa4",
        Some(
            ErrorCode::RequestTimeout
            | ErrorCode::Maintenance
            | ErrorCode::InternalError
            | ErrorCode::TooManyRequests,
        ) => "bankid.rfa5",
        // invalidParameters and the rest are our fault, never shown as BankID's.
        _ => "bankid.rfa22",
    }
}

/// Every key this module can return, so a test can check the catalogue has them all.
pub const KEYS: &[&str] = &[
    "bankid.rfa.done",
    "bankid.rfa1",
    "bankid.rfa3",
    "bankid.rfa4",
    "bankid.rfa5",
    "bankid.rfa6",
    "bankid.rfa8",
    "bankid.rfa9",
    "bankid.rfa13",
    "bankid.rfa15",
    "bankid.rfa16",
    "bankid.rfa17a",
    "bankid.rfa17b",
    "bankid.rfa21",
    "bankid.rfa22",
    "bankid.rfa23",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hint_and_error_code_has_a_message_key() {
        let hints = [
            "outstandingTransaction",
            "noClient",
            "started",
            "userMrtd",
            "userCallConfirm",
            "userSign",
            "expiredTransaction",
            "certificateErr",
            "userCancel",
            "cancelled",
            "startFailed",
            "userDeclinedCall",
            "notSupportedByUserApp",
            "transactionRiskBlocked",
            "somethingNew",
        ];
        let mut keys = Vec::new();
        for h in hints {
            for status in [Status::Pending, Status::Failed, Status::Complete] {
                for device in [Device::This, Device::Other] {
                    keys.push(for_status(status, Some(&HintCode::parse(h)), device));
                }
            }
        }
        for e in [
            "alreadyInProgress",
            "invalidParameters",
            "unauthorized",
            "notFound",
            "methodNotAllowed",
            "requestTimeout",
            "unsupportedMediaType",
            "tooManyRequests",
            "internalError",
            "maintenance",
            "somethingNew",
        ] {
            keys.push(for_error(Some(&ErrorCode::parse(e))));
        }
        keys.push(for_error(None));
        for key in keys {
            assert!(KEYS.contains(&key), "{key} missing from KEYS");
        }
        assert_eq!(
            for_status(Status::Failed, Some(&HintCode::StartFailed), Device::Other),
            "bankid.rfa17b"
        );
        assert_eq!(
            for_error(Some(&ErrorCode::AlreadyInProgress)),
            "bankid.rfa4"
        );
    }
}
