//! Identifiers. A `TenantId` or `UserId` that exists is non-empty and made of safe characters, so no
//! layer above has to ask again; generated ids are UUIDs, never derived from other ids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 128 characters")]
    TooLong,
    #[error("may contain only letters, digits, '-', '_', '.', '@' and ':'")]
    BadCharacter,
}

fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > 128 {
        return Err(IdError::TooLong);
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c)) {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string", "minLength": 1, "maxLength": 128,
                    "pattern": "^[A-Za-z0-9_.@:-]+$"
                })
            }
        }
    };
}

string_id!(
    /// A tenant of the platform, as the Kernel knows it.
    TenantId
);
string_id!(
    /// A user of a tenant, as the Kernel knows it.
    UserId
);
string_id!(
    /// The public half of an API key (`key_id`), safe to show and log.
    KeyId
);

/// Ids Lynx generates for the records it keeps: UUIDs, each its own type so one cannot be passed where
/// another is meant (a draft id as an execution id, say).
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id (see `record_id`).
            pub fn new() -> Self {
                Self(record_id())
            }
            pub fn parse(s: &str) -> Result<Self, uuid::Error> {
                uuid::Uuid::parse_str(s).map(Self)
            }
            pub fn as_uuid(self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(u: uuid::Uuid) -> Self {
                Self(u)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "format": "uuid", "description": $what})
            }
        }
    };
}

uuid_id!(
    /// One tool call, from its first audit row to its last; returned to clients as `lynx/run_id`.
    RunId,
    "The run's id in the audit trail"
);
uuid_id!(
    /// A draft.
    DraftId,
    "The draft's id"
);
uuid_id!(
    /// One execution of a cell tool on a draft.
    ExecutionId,
    "The execution's id"
);
uuid_id!(
    /// A payment an execution created.
    PaymentId,
    "The payment's id"
);
uuid_id!(
    /// A workflow an execution published.
    WorkflowId,
    "The workflow's id"
);

/// A fresh id for a stored record (run, event, draft, execution, payment, workflow). Version 7: the
/// leading bits are the time, so rows arrive at the end of their indexes instead of at random pages —
/// an append touches one leaf page per index, not one page per row, which keeps commits small. The 74
/// random bits keep ids unguessable; no id is ever trusted without a tenant check.
pub fn record_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::parse("tenant-123").is_ok());
        assert_eq!(TenantId::parse(""), Err(IdError::Empty));
        assert_eq!(TenantId::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(TenantId::parse("x".repeat(129)), Err(IdError::TooLong));
        let err = serde_json::from_str::<TenantId>("\"\"").unwrap_err();
        assert!(err.to_string().contains("must not be empty"));
    }
}
