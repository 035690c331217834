//! The users of the three systems, as one run holds them: each user's
//! texts packed in one allocation ([`PackedTexts`]), read through methods.
//!
//! To build or change a user, fill its `…Fields` (plain values, the shape
//! these types had before they were packed) and convert; [`AadUser::edit`]
//! and friends do that in place; [`AadUserRef`], [`IfsUser::new`] and
//! [`FlowUser::new`] pack borrowed texts. The JSON form is the `…Fields`'
//! and unchanged: the field names and plain strings the snapshot files and
//! the tests have always used (the store and the sources read and write
//! their own forms, without these).

use super::packed::PackedTexts;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Changes some fields of `user`: its fields as values, changed, packed again.
fn edit<U, F: Into<U>>(user: &mut U, to_fields: fn(&U) -> F, change: impl FnOnce(&mut F)) {
    let mut fields = to_fields(user);
    change(&mut fields);
    *user = fields.into();
}

/// A user of Azure AD (Microsoft Entra ID) as read from Microsoft Graph.
/// Its JSON follows Graph's field names so snapshots can be stored as JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AadUserFields", into = "AadUserFields")]
pub struct AadUser {
    /// id, userPrincipalName, mail, displayName, employeeId,
    /// onPremisesSamAccountName, userType (the `AAD_*` positions).
    texts: PackedTexts<6>,
}

const AAD_ID: usize = 0;
const AAD_UPN: usize = 1;
const AAD_MAIL: usize = 2;
const AAD_DISPLAY_NAME: usize = 3;
const AAD_EMPLOYEE_ID: usize = 4;
const AAD_SAM: usize = 5;
const AAD_USER_TYPE: usize = 6;

/// The fields of an [`AadUser`], each its own value: to build or change
/// one, and its JSON (Graph's names; an absent `accountEnabled` is true).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AadUserFields {
    /// Object ID (a GUID string).
    pub id: CompactString,
    pub user_principal_name: CompactString,
    #[serde(default)]
    pub mail: Option<CompactString>,
    #[serde(default)]
    pub display_name: Option<CompactString>,
    #[serde(default = "default_true")]
    pub account_enabled: bool,
    #[serde(default)]
    pub employee_id: Option<CompactString>,
    #[serde(default)]
    pub on_premises_sam_account_name: Option<CompactString>,
    /// `Member` or `Guest` (Graph's `userType`); may be absent.
    #[serde(default)]
    pub user_type: Option<CompactString>,
}

fn default_true() -> bool {
    true
}

impl From<AadUser> for AadUserFields {
    fn from(user: AadUser) -> Self {
        user.to_fields()
    }
}

impl AadUser {
    /// Object ID (a GUID string).
    pub fn id(&self) -> &str {
        self.texts.text(AAD_ID)
    }
    pub fn user_principal_name(&self) -> &str {
        self.texts.text(AAD_UPN)
    }
    pub fn mail(&self) -> Option<&str> {
        self.texts.get(AAD_MAIL)
    }
    pub fn display_name(&self) -> Option<&str> {
        self.texts.get(AAD_DISPLAY_NAME)
    }
    pub fn employee_id(&self) -> Option<&str> {
        self.texts.get(AAD_EMPLOYEE_ID)
    }
    pub fn on_premises_sam_account_name(&self) -> Option<&str> {
        self.texts.get(AAD_SAM)
    }
    /// `Member` or `Guest` (Graph's `userType`); may be absent.
    pub fn user_type(&self) -> Option<&str> {
        self.texts.get(AAD_USER_TYPE)
    }

    /// `accountEnabled`: sign-in allowed.
    pub fn account_enabled(&self) -> bool {
        self.texts.flag()
    }

    /// Guests: `userType = Guest` or a UPN carrying `#EXT#`.
    pub fn is_guest(&self) -> bool {
        self.user_type()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
            || self.user_principal_name().contains("#EXT#")
    }

    /// This user's fields as separate values.
    pub fn to_fields(&self) -> AadUserFields {
        AadUserFields {
            id: self.id().into(),
            user_principal_name: self.user_principal_name().into(),
            mail: self.mail().map(Into::into),
            display_name: self.display_name().map(Into::into),
            account_enabled: self.account_enabled(),
            employee_id: self.employee_id().map(Into::into),
            on_premises_sam_account_name: self.on_premises_sam_account_name().map(Into::into),
            user_type: self.user_type().map(Into::into),
        }
    }

    /// Changes some of this user's fields.
    pub fn edit(&mut self, change: impl FnOnce(&mut AadUserFields)) {
        edit(self, Self::to_fields, change);
    }

    /// A user from its texts in the `AAD_*` order (id and UPN always
    /// present).
    fn from_texts(texts: [Option<&str>; 7], account_enabled: bool) -> Self {
        AadUser {
            texts: PackedTexts::new(&texts, account_enabled),
        }
    }
}

/// An [`AadUser`]'s fields borrowed from elsewhere (a page being read, a
/// stored row): packed without a copy of each text first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AadUserRef<'a> {
    pub id: &'a str,
    pub user_principal_name: &'a str,
    pub mail: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub account_enabled: bool,
    pub employee_id: Option<&'a str>,
    pub on_premises_sam_account_name: Option<&'a str>,
    pub user_type: Option<&'a str>,
}

impl From<AadUserRef<'_>> for AadUser {
    fn from(r: AadUserRef<'_>) -> Self {
        AadUser::from_texts(
            [
                Some(r.id),
                Some(r.user_principal_name),
                r.mail,
                r.display_name,
                r.employee_id,
                r.on_premises_sam_account_name,
                r.user_type,
            ],
            r.account_enabled,
        )
    }
}

impl From<AadUserFields> for AadUser {
    fn from(f: AadUserFields) -> Self {
        AadUser::from(AadUserRef {
            id: &f.id,
            user_principal_name: &f.user_principal_name,
            mail: f.mail.as_deref(),
            display_name: f.display_name.as_deref(),
            account_enabled: f.account_enabled,
            employee_id: f.employee_id.as_deref(),
            on_premises_sam_account_name: f.on_premises_sam_account_name.as_deref(),
            user_type: f.user_type.as_deref(),
        })
    }
}

impl fmt::Debug for AadUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AadUser")
            .field("id", &self.id())
            .field("user_principal_name", &self.user_principal_name())
            .field("mail", &self.mail())
            .field("display_name", &self.display_name())
            .field("account_enabled", &self.account_enabled())
            .field("employee_id", &self.employee_id())
            .field(
                "on_premises_sam_account_name",
                &self.on_premises_sam_account_name(),
            )
            .field("user_type", &self.user_type())
            .finish()
    }
}

/// A user of IFS Cloud as read from the OData `Users` entity set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "IfsUserFields", into = "IfsUserFields")]
pub struct IfsUser {
    /// identity, description, directory_id, email (the `IFS_*` positions).
    texts: PackedTexts<3>,
}

const IFS_IDENTITY: usize = 0;
const IFS_DESCRIPTION: usize = 1;
const IFS_DIRECTORY_ID: usize = 2;
const IFS_EMAIL: usize = 3;

/// The fields of an [`IfsUser`], each its own value: to build or change
/// one, and its JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfsUserFields {
    /// Key, upper case (e.g. `JDOE`).
    pub identity: CompactString,
    /// Full name (`Description`).
    pub description: Option<CompactString>,
    /// The Directory ID (`FND_USER.WEB_USER`); `None` or empty when unset.
    pub directory_id: Option<CompactString>,
    pub active: bool,
    /// Optional e-mail, when the configured projection exposes one.
    pub email: Option<CompactString>,
}

impl IfsUser {
    /// Key, upper case (e.g. `JDOE`).
    pub fn identity(&self) -> &str {
        self.texts.text(IFS_IDENTITY)
    }
    /// Full name (`Description`).
    pub fn description(&self) -> Option<&str> {
        self.texts.get(IFS_DESCRIPTION)
    }
    /// The Directory ID (`FND_USER.WEB_USER`); `None` or empty when unset.
    pub fn directory_id(&self) -> Option<&str> {
        self.texts.get(IFS_DIRECTORY_ID)
    }
    /// Optional e-mail, when the configured projection exposes one.
    pub fn email(&self) -> Option<&str> {
        self.texts.get(IFS_EMAIL)
    }

    pub fn active(&self) -> bool {
        self.texts.flag()
    }

    /// This user's fields as separate values.
    pub fn to_fields(&self) -> IfsUserFields {
        IfsUserFields {
            identity: self.identity().into(),
            description: self.description().map(Into::into),
            directory_id: self.directory_id().map(Into::into),
            active: self.active(),
            email: self.email().map(Into::into),
        }
    }

    /// Changes some of this user's fields.
    pub fn edit(&mut self, change: impl FnOnce(&mut IfsUserFields)) {
        edit(self, Self::to_fields, change);
    }

    /// An IFS user from borrowed texts (no copy of each first).
    pub fn new(
        identity: &str,
        description: Option<&str>,
        directory_id: Option<&str>,
        active: bool,
        email: Option<&str>,
    ) -> Self {
        IfsUser {
            texts: PackedTexts::new(&[Some(identity), description, directory_id, email], active),
        }
    }
}

impl From<IfsUser> for IfsUserFields {
    fn from(user: IfsUser) -> Self {
        user.to_fields()
    }
}

impl From<IfsUserFields> for IfsUser {
    fn from(f: IfsUserFields) -> Self {
        IfsUser::new(
            &f.identity,
            f.description.as_deref(),
            f.directory_id.as_deref(),
            f.active,
            f.email.as_deref(),
        )
    }
}

impl fmt::Debug for IfsUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IfsUser")
            .field("identity", &self.identity())
            .field("description", &self.description())
            .field("directory_id", &self.directory_id())
            .field("active", &self.active())
            .field("email", &self.email())
            .finish()
    }
}

/// A user of Novacura Flow Server as delivered by the Flow endpoint or CSV.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FlowUserFields", into = "FlowUserFields")]
pub struct FlowUser {
    /// user_id, name, email, user_type, sync_source (the `FLOW_*` positions).
    texts: PackedTexts<4>,
}

const FLOW_USER_ID: usize = 0;
const FLOW_NAME: usize = 1;
const FLOW_EMAIL: usize = 2;
const FLOW_USER_TYPE: usize = 3;
const FLOW_SYNC_SOURCE: usize = 4;

/// The fields of a [`FlowUser`], each its own value: to build or change
/// one, and its JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowUserFields {
    pub user_id: CompactString,
    pub name: Option<CompactString>,
    pub email: Option<CompactString>,
    pub active: bool,
    /// Full, Machine, Transaction, Portal, Public or App.
    pub user_type: CompactString,
    /// Non-empty when the user is maintained by Flow's AD sync (e.g. `AzureAD`).
    pub sync_source: Option<CompactString>,
}

impl FlowUser {
    pub fn user_id(&self) -> &str {
        self.texts.text(FLOW_USER_ID)
    }
    pub fn name(&self) -> Option<&str> {
        self.texts.get(FLOW_NAME)
    }
    pub fn email(&self) -> Option<&str> {
        self.texts.get(FLOW_EMAIL)
    }
    /// Full, Machine, Transaction, Portal, Public or App.
    pub fn user_type(&self) -> &str {
        self.texts.text(FLOW_USER_TYPE)
    }
    /// Non-empty when the user is maintained by Flow's AD sync (e.g. `AzureAD`).
    pub fn sync_source(&self) -> Option<&str> {
        self.texts.get(FLOW_SYNC_SOURCE)
    }

    pub fn active(&self) -> bool {
        self.texts.flag()
    }

    /// Machine users are service accounts: never orphans, never renamed.
    pub fn is_machine(&self) -> bool {
        self.user_type().eq_ignore_ascii_case("machine")
    }

    /// Maintained by Flow's AD sync: a rename would be undone by the next sync.
    pub fn is_sync_managed(&self) -> bool {
        self.sync_source().is_some_and(|s| !s.trim().is_empty())
    }

    /// This user's fields as separate values.
    pub fn to_fields(&self) -> FlowUserFields {
        FlowUserFields {
            user_id: self.user_id().into(),
            name: self.name().map(Into::into),
            email: self.email().map(Into::into),
            active: self.active(),
            user_type: self.user_type().into(),
            sync_source: self.sync_source().map(Into::into),
        }
    }

    /// Changes some of this user's fields.
    pub fn edit(&mut self, change: impl FnOnce(&mut FlowUserFields)) {
        edit(self, Self::to_fields, change);
    }

    /// A Flow user from borrowed texts (no copy of each first).
    pub fn new(
        user_id: &str,
        name: Option<&str>,
        email: Option<&str>,
        active: bool,
        user_type: &str,
        sync_source: Option<&str>,
    ) -> Self {
        FlowUser {
            texts: PackedTexts::new(
                &[Some(user_id), name, email, Some(user_type), sync_source],
                active,
            ),
        }
    }
}

impl From<FlowUser> for FlowUserFields {
    fn from(user: FlowUser) -> Self {
        user.to_fields()
    }
}

impl From<FlowUserFields> for FlowUser {
    fn from(f: FlowUserFields) -> Self {
        FlowUser::new(
            &f.user_id,
            f.name.as_deref(),
            f.email.as_deref(),
            f.active,
            &f.user_type,
            f.sync_source.as_deref(),
        )
    }
}

impl fmt::Debug for FlowUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowUser")
            .field("user_id", &self.user_id())
            .field("name", &self.name())
            .field("email", &self.email())
            .field("active", &self.active())
            .field("user_type", &self.user_type())
            .field("sync_source", &self.sync_source())
            .finish()
    }
}
