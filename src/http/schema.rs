//! The JSON the handlers answer and accept, as types the `#[utoipa::path]`
//! annotations name. Where a handler writes its answer from one of these types
//! (`/healthz`, `/readyz`, `/authenticate`), the description is the answer; the
//! others only describe JSON written otherwise (the `/sync` payload is streamed
//! by the directory's writer; `/authenticate`'s body is parsed by hand). The fail
//! envelope lives with [`ApiError`](crate::error::ApiError), which writes it.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::FailEnvelope;
use crate::fields::{DepartmentField, EmployeeField};

/// `"success"`.
#[derive(ToSchema, Serialize)]
pub enum SuccessStatus {
    #[serde(rename = "success")]
    Success,
}

/// `{"status":"success"}`.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Success {
    status: SuccessStatus,
}

impl Success {
    pub const SUCCESS: Self = Self {
        status: SuccessStatus::Success,
    };
}

/// `{"status":"success"}`: the password is right.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSuccess {
    status: SuccessStatus,
}

/// What `/authenticate` answers with HTTP 200.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum LoginAnswer {
    Success(LoginSuccess),
    Fail(FailEnvelope),
}

impl LoginAnswer {
    /// The password is right.
    pub const fn success() -> Self {
        Self::Success(LoginSuccess {
            status: SuccessStatus::Success,
        })
    }

    /// The check failed, for whatever reason: always the same `message`.
    pub fn fail(message: &str) -> Self {
        Self::Fail(FailEnvelope::new(message))
    }
}

/// A login to check; extra fields are ignored, a missing Content-Type is accepted.
#[derive(ToSchema)]
#[schema(example = json!({"username": "alice", "password": "correct horse battery staple"}))]
#[allow(dead_code)] // describes what `/authenticate` parses by hand
pub struct LoginRequest {
    /// The account, matched byte for byte.
    username: String,
    /// Never logged, stored or echoed.
    #[schema(format = Password)]
    password: String,
}

/// Every active employee and department, ordered by key; the same data gives
/// byte-identical output.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "status": "success",
    "user_info_list": [
        {"username": "alice", "email": "alice@example.com", "nick_name": "Alice Liddell",
         "ad_no": "E001", "company": "Example Ltd", "phone1": "+44 20 7946 0001",
         "phone2": "", "extension_no": "101", "gender": "female"}
    ],
    "group_info_list": [
        {"display_name": "Head Office", "group_no": "HQ", "parent_group_no": "",
         "user_list": ["alice"]}
    ]
}))]
#[allow(dead_code)] // describes what the directory's writer streams
pub struct SyncSuccess {
    status: SuccessStatus,
    user_info_list: Vec<SyncUser>,
    group_info_list: Vec<SyncGroup>,
}

/// An object of required string fields, none other allowed: each field's
/// name, description and pattern.
fn string_fields(
    description: &str,
    fields: impl Iterator<Item = (&'static str, (Option<&'static str>, Option<&'static str>))>,
) -> ObjectBuilder {
    fields.fold(
        Object::builder()
            .description(Some(description))
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
        |object, (name, (doc, pattern))| {
            let field = Object::builder()
                .schema_type(Type::String)
                .description(doc)
                .pattern(pattern);
            object.property(name, field).required(name)
        },
    )
}

/// One active employee. Every value is a string; a NULL in the database is `""`.
pub struct SyncUser;

impl PartialSchema for SyncUser {
    fn schema() -> RefOr<Schema> {
        string_fields(
            "One active employee. Every value is a string; a NULL in the database is `\"\"`.",
            EmployeeField::ALL.iter().map(|f| (f.name(), f.doc())),
        )
        .into()
    }
}

impl ToSchema for SyncUser {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SyncUser")
    }
}

/// One active department.
pub struct SyncGroup;

impl PartialSchema for SyncGroup {
    fn schema() -> RefOr<Schema> {
        let members = ArrayBuilder::new()
            .items(String::schema())
            .description(Some("Usernames of served employees, sorted."));
        string_fields(
            "One active department.",
            DepartmentField::PAYLOAD_ORDER
                .iter()
                .map(|f| (f.name(), f.doc())),
        )
        .property("user_list", members)
        .required("user_list")
        .into()
    }
}

impl ToSchema for SyncGroup {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SyncGroup")
    }
}
