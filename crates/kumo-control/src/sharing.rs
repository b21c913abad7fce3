//! Sharing images and snapshots with other accounts: AMI launch permissions and snapshot
//! create-volume permissions.
//!
//! A resource stays in its owner's scope. Each grant is also written as a small record in the
//! grantee's scope (or, for the group `all`, in the pseudo-account [`PUBLIC`]), naming the owner.
//! Finding what an account may use is then two indexed reads: its own grants and the public
//! ones, with no scan across accounts.

use crate::core::error::Fail;
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Index, Query, Read, Record, Scope, Tx};
use serde::{Deserialize, Serialize};

/// The scope account holding grants to everyone (AWS's group `all`). Not twelve digits, so no
/// real account can have it.
pub const PUBLIC: &str = "all";

/// "Account `owner` lets the scope's account (or everyone) use resource `id`."
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRecord {
    pub id: String,
    pub owner: String,
}

impl Record for GrantRecord {
    const KIND: &'static str = "grant";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index::default()
    }
}

pub use crate::records::permissions::Permissions;

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// One change to a permission list: who, and whether added.
pub struct Change {
    pub add: bool,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// The changes of the list form of a Modify…Attribute call: `OperationType` with account ids
/// and groups.
pub fn listed(
    operation_type: Option<&str>,
    users: Option<&[String]>,
    groups: Option<&[String]>,
) -> Result<Vec<Change>, Ec2Error> {
    if users.is_none() && groups.is_none() {
        return Ok(Vec::new());
    }
    let add = match operation_type {
        Some("add") => true,
        Some("remove") => false,
        Some(other) => {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({other}) for parameter operationType is invalid."
            )))
        }
        None => return Err(Ec2Error::missing_parameter("operationType")),
    };
    let mut out: Vec<Change> = Vec::new();
    for u in users.into_iter().flatten() {
        out.push(Change {
            add,
            user: Some(u.clone()),
            group: None,
        });
    }
    for g in groups.into_iter().flatten() {
        out.push(Change {
            add,
            user: None,
            group: Some(g.clone()),
        });
    }
    Ok(out)
}

/// AWS's answer to a permission item that is not an account id (`userId`) or `all`
/// (`UserGroup`).
pub fn bad_item(kind: &'static str) -> impl Fn(&str) -> Ec2Error {
    move |v| {
        Ec2Error::new(
            "InvalidAMIAttributeItemValue",
            format!("Invalid attribute item value \"{v}\" for {kind} item type."),
        )
    }
}

/// Applies changes, additions first and then removals, and checks each item: an account id
/// of twelve digits, or the group `all`.
pub fn apply(p: &Permissions, changes: &[Change]) -> Result<Permissions, Ec2Error> {
    let (bad_user, bad_group) = (bad_item("userId"), bad_item("UserGroup"));
    let mut out = p.clone();
    for c in changes
        .iter()
        .filter(|c| c.add)
        .chain(changes.iter().filter(|c| !c.add))
    {
        if let Some(u) = &c.user {
            if !is_account_id(u) {
                return Err(bad_user(u));
            }
            out.users.retain(|x| x != u);
            if c.add {
                out.users.push(u.clone());
            }
        }
        if let Some(g) = &c.group {
            if g != "all" {
                return Err(bad_group(g));
            }
            out.public = c.add;
        }
    }
    out.users.sort();
    out.users.dedup();
    Ok(out)
}

/// Writes the grant records that move `id` (owned by `owner`) from `before` to `after`.
pub fn regrant(
    tx: &Tx,
    owner: Scope,
    id: &str,
    before: &Permissions,
    after: &Permissions,
) -> Result<(), Fail> {
    let grantees = |p: &Permissions| -> Vec<String> {
        let mut g = p.users.clone();
        if p.public {
            g.push(PUBLIC.to_string());
        }
        g
    };
    let (old, new) = (grantees(before), grantees(after));
    for gone in old.iter().filter(|g| !new.contains(g)) {
        tx.delete::<GrantRecord>(at(owner, gone), id)?;
    }
    for added in new.iter().filter(|g| !old.contains(g)) {
        if added == owner.account {
            // Sharing with oneself grants nothing new.
            continue;
        }
        tx.delete::<GrantRecord>(at(owner, added), id)?;
        tx.insert(
            at(owner, added),
            &GrantRecord {
                id: id.to_string(),
                owner: owner.account.to_string(),
            },
        )?;
    }
    Ok(())
}

fn at<'a>(s: Scope<'a>, account: &'a str) -> Scope<'a> {
    Scope {
        account,
        region: s.region,
    }
}

/// The account owning a resource `caller` may use: the caller itself, or an owner that
/// granted it to the caller or to everyone. None when there is no such resource.
pub fn owner_of<R: Record, V: Read>(
    v: &V,
    caller: Scope,
    id: &str,
) -> Result<Option<(String, R)>, Fail> {
    if let Some(r) = v.get::<R>(caller, id)? {
        return Ok(Some((caller.account.to_string(), r)));
    }
    for grantee in [caller.account, PUBLIC] {
        if let Some(g) = v.get::<GrantRecord>(at(caller, grantee), id)? {
            let owner = at(caller, &g.owner);
            if let Some(r) = v.get::<R>(owner, id)? {
                return Ok(Some((g.owner.clone(), r)));
            }
        }
    }
    Ok(None)
}

/// Resources of another account that `caller` may use, with their owners: those granted to the
/// caller (`explicit`), and the public ones (`public`). Ids start with `prefix-`.
pub fn shared_with<R: Record, V: Read>(
    v: &V,
    caller: Scope,
    prefix: &str,
    explicit: bool,
    public: bool,
) -> Result<Vec<(String, R)>, Fail> {
    let mut grants: Vec<GrantRecord> = Vec::new();
    if explicit {
        grants.extend(v.list::<GrantRecord>(caller, &Query::default())?);
    }
    if public {
        grants.extend(v.list::<GrantRecord>(at(caller, PUBLIC), &Query::default())?);
    }
    let mut out: Vec<(String, R)> = Vec::new();
    let start = format!("{prefix}-");
    for g in grants {
        if !g.id.starts_with(&start) || g.owner == caller.account {
            continue;
        }
        if out.iter().any(|(_, r)| r.id() == g.id) {
            continue;
        }
        if let Some(r) = v.get::<R>(at(caller, &g.owner), &g.id)? {
            out.push((g.owner, r));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(add: bool, user: Option<&str>, group: Option<&str>) -> Change {
        Change {
            add,
            user: user.map(str::to_string),
            group: group.map(str::to_string),
        }
    }

    #[test]
    fn adds_removes_and_checks() {
        let p = Permissions::default();
        let p = apply(
            &p,
            &[
                change(true, Some("222222222222"), None),
                change(true, Some("111111111111"), None),
                change(true, Some("111111111111"), None),
                change(true, None, Some("all")),
            ],
        )
        .unwrap();
        assert_eq!(p.users, vec!["111111111111", "222222222222"]);
        assert!(p.public && p.allows("999999999999"));
        let p = apply(
            &p,
            &[
                change(false, Some("111111111111"), None),
                change(false, None, Some("all")),
            ],
        )
        .unwrap();
        assert_eq!(p.users, vec!["222222222222"]);
        assert!(!p.public && !p.allows("999999999999") && p.allows("222222222222"));
        assert!(apply(&p, &[change(true, Some("123"), None)]).is_err());
        assert!(apply(&p, &[change(true, None, Some("everyone"))]).is_err());
    }

    #[test]
    fn removal_wins_over_addition_in_one_request() {
        let p = apply(
            &Permissions::default(),
            &[
                change(false, Some("111111111111"), None),
                change(true, Some("111111111111"), None),
            ],
        )
        .unwrap();
        assert!(p.users.is_empty());
    }
}
