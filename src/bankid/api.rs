//! The BankID RP API v6.0 on the wire (specs/bankid.md §2–5): request and response bodies,
//! hint codes and error codes. Shared by the client and the stub, so both speak one protocol.
//! Unknown hint and error codes are kept as `Other`, as the API requires of clients.

use serde::{Deserialize, Serialize};

/// `requirement` of an auth order (§3). Debug is redacted: the personal number never
/// reaches a log.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_code: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrtd: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_number: Option<String>,
}

impl std::fmt::Debug for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requirement")
            .field("pin_code", &self.pin_code)
            .field("mrtd", &self.mrtd)
            .field("certificate_policies", &self.certificate_policies)
            .field(
                "personal_number",
                &self.personal_number.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Body of `auth` (and `sign`, whose `userVisibleData` is mandatory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRequest {
    pub end_user_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<Requirement>,
    /// Base64 of UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_visible_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_visible_data_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_non_visible_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_risk: Option<bool>,
}

/// Body of `sign`: the fields of `auth`; `userVisibleData` is mandatory.
pub type SignRequest = AuthRequest;

/// Body of `phone/auth` (and `phone/sign`). Debug is redacted like `User`'s.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneAuthRequest {
    pub personal_number: String,
    /// `"user"` or `"RP"`: who called whom.
    pub call_initiator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<Requirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_visible_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_visible_data_format: Option<String>,
}

impl std::fmt::Debug for PhoneAuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneAuthRequest")
            .field("call_initiator", &self.call_initiator)
            .field("requirement", &self.requirement)
            .finish_non_exhaustive()
    }
}

/// Body of `phone/sign`: the fields of `phone/auth` (`userVisibleData` mandatory) and data
/// that is signed but not shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneSignRequest {
    #[serde(flatten)]
    pub phone: PhoneAuthRequest,
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_non_visible_data: Option<String>,
}

/// Answer to `auth`/`sign`. The QR fields are absent in answers to `phone/*`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResponse {
    pub order_ref: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auto_start_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qr_start_token: String,
    /// Never leaves the server (§6); redacted from Debug.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qr_start_secret: String,
}

impl std::fmt::Debug for OrderResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderResponse")
            .field("order_ref", &self.order_ref)
            .field("qr_start_token", &self.qr_start_token)
            .finish_non_exhaustive()
    }
}

/// Body of `collect` and `cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRef {
    pub order_ref: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Failed,
    Complete,
}

/// Answer to `collect` (§4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectResponse {
    pub order_ref: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint_code: Option<HintCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_data: Option<CompletionData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionData {
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id_issue_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUp>,
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub ocsp_response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
}

/// The person who identified. Debug is redacted: the personal number never reaches a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub personal_number: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub surname: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("User { personal_number: <redacted>, .. }")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub ip_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uhi: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepUp {
    pub mrtd: bool,
}

/// Defines a code enum that keeps unknown values (`Other`) and round-trips as its string.
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A code this version does not know; the API may add codes at any time.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(s) => s,
                }
            }

            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

code_enum!(
    /// `hintCode` of a pending or failed order (§4).
    HintCode {
        OutstandingTransaction = "outstandingTransaction",
        NoClient = "noClient",
        Started = "started",
        UserMrtd = "userMrtd",
        UserCallConfirm = "userCallConfirm",
        UserSign = "userSign",
        ExpiredTransaction = "expiredTransaction",
        CertificateErr = "certificateErr",
        UserCancel = "userCancel",
        Cancelled = "cancelled",
        StartFailed = "startFailed",
        UserDeclinedCall = "userDeclinedCall",
        NotSupportedByUserApp = "notSupportedByUserApp",
        TransactionRiskBlocked = "transactionRiskBlocked",
    }
);

code_enum!(
    /// `errorCode` of an HTTP error answer (§5).
    ErrorCode {
        AlreadyInProgress = "alreadyInProgress",
        InvalidParameters = "invalidParameters",
        Unauthorized = "unauthorized",
        NotFound = "notFound",
        MethodNotAllowed = "methodNotAllowed",
        RequestTimeout = "requestTimeout",
        UnsupportedMediaType = "unsupportedMediaType",
        TooManyRequests = "tooManyRequests",
        InternalError = "internalError",
        Maintenance = "maintenance",
    }
);

impl ErrorCode {
    /// The HTTP status BankID answers this code with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AlreadyInProgress | Self::InvalidParameters => 400,
            Self::Unauthorized => 401,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::InternalError | Self::Other(_) => 500,
            Self::Maintenance => 503,
        }
    }
}

/// The body of an HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: ErrorCode,
    #[serde(default)]
    pub details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_survive_a_round_trip() {
        let c: CollectResponse = serde_json::from_str(
            r#"{"orderRef":"o","status":"pending","hintCode":"somethingNew"}"#,
        )
        .unwrap();
        assert_eq!(c.hint_code, Some(HintCode::Other("somethingNew".into())));
        let e: ErrorBody =
            serde_json::from_str(r#"{"errorCode":"alreadyInProgress","details":"x"}"#).unwrap();
        assert_eq!(e.error_code, ErrorCode::AlreadyInProgress);
        assert_eq!(
            serde_json::to_string(&HintCode::UserSign).unwrap(),
            r#""userSign""#
        );
    }

    #[test]
    fn the_spec_example_parses_and_hides_the_personal_number_from_debug() {
        let c: CollectResponse = serde_json::from_str(
            r#"{"orderRef":"131daac9-16c6-4618-beb0-365768f37288","status":"complete",
             "completionData":{
               "user":{"personalNumber":"198003021238","name":"Erik Sandberg","givenName":"Erik","surname":"Sandberg"},
               "device":{"ipAddress":"194.168.2.25","uhi":"OZvYM9VvyiAmG7NA5jU5zRGcfZSLz2RGPx5f0c0v5ro="},
               "bankIdIssueDate":"2023-04-12",
               "stepUp":{"mrtd":false},
               "signature":"PD94bWwgdmVyc2lvbj0iMS4wIi","ocspResponse":"MIIHfgoBAKCCB3cw"}}"#,
        )
        .unwrap();
        let data = c.completion_data.unwrap();
        assert_eq!(data.user.personal_number, "198003021238");
        assert!(!format!("{data:?}").contains("198003021238"));
        let o = OrderResponse {
            order_ref: "o".into(),
            auto_start_token: "a".into(),
            qr_start_token: "t".into(),
            qr_start_secret: "d28db9a7-secret".into(),
        };
        assert!(!format!("{o:?}").contains("secret"));
        let p = PhoneSignRequest {
            phone: PhoneAuthRequest {
                personal_number: "198003021238".into(),
                call_initiator: "RP".into(),
                requirement: Some(Requirement {
                    personal_number: Some("198003021238".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            user_non_visible_data: None,
        };
        assert!(!format!("{p:?}").contains("198003021238"));
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.starts_with(r#"{"personalNumber":"198003021238","callInitiator":"RP""#));
    }
}
