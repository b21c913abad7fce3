//! Launch templates: CreateLaunchTemplate, CreateLaunchTemplateVersion,
//! DescribeLaunchTemplates, DescribeLaunchTemplateVersions, ModifyLaunchTemplate,
//! DeleteLaunchTemplate, DeleteLaunchTemplateVersions, GetLaunchTemplateData, and
//! RunInstances' launch from a template ([`merge`]).
//!
//! A version's data is the `RequestLaunchTemplateData` it was created with, stored as JSON
//! under the model's member names. The model gives the template's request shape, its
//! response shape and RunInstances' request the same member names, so the stored data is
//! shown by reading it as the response shape, and launched from by reading it as a
//! RunInstances request beneath the call's own members. AWS checks little of a template's
//! data when it is created (an image that does not exist is accepted); RunInstances checks
//! the merged request as it checks any other.

use crate::core::checks::Checks;
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::idempotency;
use crate::core::tagged::Tagged;
use crate::records::instance::InstanceRecord;
use crate::records::launch_template::{
    version_id, LaunchTemplateRecord, LaunchTemplateVersionRecord,
};
use crate::records::volume::VolumeRecord;
use crate::tags;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::{DescribeLaunchTemplateVersions as VF, DescribeLaunchTemplates as F};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Scope, StoreError};
use serde_json::Value;

/// AWS's quotas: launch templates per region, versions per template.
pub const MAX_TEMPLATES: usize = 5_000;
pub const MAX_VERSIONS: i64 = 10_000;
/// Versions one DeleteLaunchTemplateVersions call deletes at most.
const MAX_DELETE: usize = 200;

/// A name of AWS's form: 3 to 128 of letters, digits and `( ) . - / _`.
fn check_name(name: &str) -> Result<(), Ec2Error> {
    let ok = (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "().-/_".contains(c));
    if ok {
        return Ok(());
    }
    Err(Ec2Error::new(
        "InvalidLaunchTemplateName.MalformedException",
        "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'",
    ))
}

fn check_description(d: Option<&str>) -> Result<(), Ec2Error> {
    match d {
        Some(d) if d.chars().count() > 255 => Err(Ec2Error::invalid_value(format!(
            "Value ({d}) for parameter versionDescription is invalid. Length must be at most 255 characters."
        ))),
        _ => Ok(()),
    }
}

fn id_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidLaunchTemplateId.NotFound",
        format!("The specified launch template, with template ID {id}, does not exist."),
    )
}

fn name_not_found(name: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidLaunchTemplateName.NotFoundException",
        format!("The specified launch template, with template name {name}, does not exist."),
    )
}

fn version_not_found(t: &LaunchTemplateRecord, n: i64) -> Ec2Error {
    Ec2Error::new(
        "InvalidLaunchTemplateId.VersionNotFound",
        format!(
            "Could not find the specified version {n} for the launch template with ID {}.",
            t.id
        ),
    )
}

/// Which template a request names: by id or by name, one of the two. `both` is the
/// operation's answer when it is given both.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    Id(&'a str),
    Name(&'a str),
}

fn which<'a>(
    id: Option<&'a str>,
    name: Option<&'a str>,
    both: &str,
) -> Result<Which<'a>, Ec2Error> {
    match (id.filter(|i| !i.is_empty()), name.filter(|n| !n.is_empty())) {
        (Some(_), Some(_)) => Err(Ec2Error::new("InvalidParameterCombination", both)),
        (Some(i), None) => Ok(Which::Id(i)),
        (None, Some(n)) => Ok(Which::Name(n)),
        (None, None) => Err(Ec2Error::missing_parameter(
            "LaunchTemplateId or LaunchTemplateName",
        )),
    }
}

const BOTH: &str =
    "A launch template ID and a launch template name cannot be specified in the same request.";
const MODIFY_BOTH: &str =
    "Either provide launch template ID or launch template name to modify the template.";

/// The template a request names, by id or by name ([`which`], with the operation's answer to
/// both).
trait Named {
    fn named(&self) -> Result<Which<'_>, Ec2Error>;
}

macro_rules! named {
    ($($t:ty => $both:expr),* $(,)?) => {$(
        impl Named for $t {
            fn named(&self) -> Result<Which<'_>, Ec2Error> {
                which(
                    self.launch_template_id.as_deref(),
                    self.launch_template_name.as_deref(),
                    $both,
                )
            }
        }
    )*};
}

named!(
    CreateLaunchTemplateVersionRequest => BOTH,
    DescribeLaunchTemplateVersionsRequest => BOTH,
    ModifyLaunchTemplateRequest => MODIFY_BOTH,
    DeleteLaunchTemplateRequest => BOTH,
    DeleteLaunchTemplateVersionsRequest => BOTH,
);

fn get_template<V: Read>(v: &V, s: Scope, w: Which) -> Result<LaunchTemplateRecord, Fail> {
    match w {
        Which::Id(id) => v.get(s, id)?.ok_or_else(|| Fail(id_not_found(id))),
        Which::Name(name) => v
            .get_by_name(s, name)?
            .ok_or_else(|| Fail(name_not_found(name))),
    }
}

/// A version as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Latest,
    Default,
    Number(i64),
}

/// `$Latest`, `$Default` or a version number (1 or more).
pub fn parse_version(v: &str) -> Result<VersionRef, Ec2Error> {
    match v {
        "$Latest" => Ok(VersionRef::Latest),
        "$Default" => Ok(VersionRef::Default),
        n => match n.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(VersionRef::Number(n)),
            _ => Err(Ec2Error::invalid_value(format!(
                "Invalid launch template version '{v}': specify '$Latest', '$Default', or a version number."
            ))),
        },
    }
}

fn number_of(t: &LaunchTemplateRecord, r: VersionRef, latest: i64) -> i64 {
    match r {
        VersionRef::Latest => latest,
        VersionRef::Default => t.default_version,
        VersionRef::Number(n) => n,
    }
}

/// Every version of a template, by number.
fn versions_of<V: Read>(
    v: &V,
    s: Scope,
    t: &LaunchTemplateRecord,
) -> Result<Vec<LaunchTemplateVersionRecord>, Fail> {
    let prefix = format!("{}/", t.id);
    let mut out: Vec<LaunchTemplateVersionRecord> = Vec::new();
    let mut after = prefix.clone();
    loop {
        let rows: Vec<LaunchTemplateVersionRecord> = v.list(
            s,
            &Query {
                after: Some(&after),
                limit: Some(1000),
                ..Query::default()
            },
        )?;
        let n = rows.len();
        let mut done = n < 1000;
        for r in rows {
            if !r.id.starts_with(&prefix) {
                done = true;
                break;
            }
            after = r.id.clone();
            out.push(r);
        }
        if done {
            return Ok(out);
        }
    }
}

fn get_version<V: Read>(
    v: &V,
    s: Scope,
    t: &LaunchTemplateRecord,
    n: i64,
) -> Result<LaunchTemplateVersionRecord, Fail> {
    v.get(s, &version_id(&t.id, n))?
        .ok_or_else(|| Fail(version_not_found(t, n)))
}

fn created_by(ctx: &RequestContext) -> String {
    format!("arn:aws:iam::{}:root", ctx.account_id)
}

/// The data as stored: the request's JSON under the model's names.
fn to_json(d: &RequestLaunchTemplateData) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}

/// Stored data as the response shows it.
fn shown(data: &Value) -> ResponseLaunchTemplateData {
    serde_json::from_value(data.clone()).unwrap_or_default()
}

fn wire_template(t: &LaunchTemplateRecord, tags: &[(String, String)]) -> LaunchTemplate {
    LaunchTemplate {
        launch_template_id: Some(t.id.clone()),
        launch_template_name: Some(t.name.clone()),
        create_time: Some(DateTime(t.created_ms)),
        created_by: Some(t.created_by.clone()),
        default_version_number: Some(t.default_version),
        latest_version_number: Some(t.latest_version),
        operator: Some(OperatorResponse {
            managed: Some(false),
            ..OperatorResponse::default()
        }),
        tags: (!tags.is_empty()).then(|| tags::wire(tags)),
    }
}

fn wire_version(
    t: &LaunchTemplateRecord,
    v: &LaunchTemplateVersionRecord,
) -> LaunchTemplateVersion {
    LaunchTemplateVersion {
        launch_template_id: Some(t.id.clone()),
        launch_template_name: Some(t.name.clone()),
        version_number: Some(v.number),
        version_description: v.description.clone(),
        create_time: Some(DateTime(v.created_ms)),
        created_by: Some(v.created_by.clone()),
        default_version: Some(v.number == t.default_version),
        launch_template_data: Some(shown(&v.data)),
        operator: Some(OperatorResponse {
            managed: Some(false),
            ..OperatorResponse::default()
        }),
    }
}

/// What a template's data may say before anything is looked up: the resource types of its
/// tags (those a launch tags) and their tags, the instance type where it names one, the
/// version's description.
fn check_data(d: &RequestLaunchTemplateData) -> Result<(), Ec2Error> {
    for spec in d.tag_specifications.iter().flatten() {
        let rt = spec.resource_type.as_deref().unwrap_or_default();
        if !matches!(
            rt,
            "instance" | "volume" | "network-interface" | "spot-instances-request"
        ) {
            return Err(Ec2Error::invalid_value(format!(
                "'{rt}' is not a valid taggable resource type for this operation."
            )));
        }
        tags::checked(spec.tags.clone().unwrap_or_default())?;
    }
    if let Some(t) = &d.instance_type {
        if crate::instance_types::find(t).is_none() {
            return Err(Ec2Error::invalid_value(format!(
                "Invalid value '{t}' for InstanceType."
            )));
        }
    }
    Ok(())
}

/// CreateLaunchTemplate, before any lookup: a name and data (empty data is none at all);
/// then the name's form, the description, the tags, the data's own checks and the token.
/// The name's uniqueness follows, then the limit on templates.
impl Checks for CreateLaunchTemplateRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.launch_template_name.is_empty() {
            return Err(Ec2Error::missing_parameter("LaunchTemplateName"));
        }
        if self.launch_template_data == RequestLaunchTemplateData::default() {
            return Err(Ec2Error::new(
                "MissingParameter",
                "No launch template data was provided. Launch template data is required to create a launch template.",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        check_name(&self.launch_template_name)?;
        check_description(self.version_description.as_deref())?;
        tags::from_specifications(self.tag_specifications.clone(), "launch-template")?;
        check_data(&self.launch_template_data)?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

/// CreateLaunchTemplateVersion, before any lookup: the template by id or name; then the
/// source version's form, the description, the data's checks and the token. The template,
/// the source version and the limit on versions follow.
impl Checks for CreateLaunchTemplateVersionRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        self.named().map(drop)
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(v) = &self.source_version {
            parse_version(v)?;
        }
        check_description(self.version_description.as_deref())?;
        check_data(&self.launch_template_data)?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

/// A new template, its version 1 and its tags in one transaction.
pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateLaunchTemplateRequest,
) -> Result<CreateLaunchTemplateResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "launch-template")?;
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let s = scope(ctx);
    let now = k.now_ms();
    let (t, tags) = k
        .store
        .write(!ctx.dry_run, |tx| {
            if let Some(id) = idempotency::earlier(tx, s, "CreateLaunchTemplate", token, &digest)? {
                let t: LaunchTemplateRecord =
                    tx.get(s, &id)?.ok_or_else(|| Fail(id_not_found(&id)))?;
                let tags = tx.tags_of(s, &t.id)?;
                return Ok((t, tags));
            }
            if tx
                .get_by_name::<LaunchTemplateRecord>(s, &input.launch_template_name)?
                .is_some()
            {
                return Err(Fail(already_exists()));
            }
            let count = tx.count_in_zone(
                s,
                <LaunchTemplateRecord as kumo_store::Record>::KIND,
                crate::records::launch_template::REGIONAL,
                &[],
            )?;
            if count >= MAX_TEMPLATES as u64 {
                return Err(Fail(Ec2Error::new(
                    "MaxTemplateLimitExceeded",
                    "Account has already reached max permitted templates",
                )));
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            let t = LaunchTemplateRecord {
                id: crate::core::ids::new_id("lt"),
                name: input.launch_template_name.clone(),
                created_ms: now,
                created_by: created_by(ctx),
                default_version: 1,
                latest_version: 1,
                last_number: 1,
                versions: 1,
            };
            match tx.insert(s, &t) {
                Err(StoreError::Conflict) => return Err(Fail(already_exists())),
                other => other?,
            }
            tx.insert(
                s,
                &LaunchTemplateVersionRecord {
                    id: version_id(&t.id, 1),
                    template_id: t.id.clone(),
                    number: 1,
                    description: input.version_description.clone(),
                    created_ms: now,
                    created_by: t.created_by.clone(),
                    data: to_json(&input.launch_template_data),
                },
            )?;
            tags::put_all(tx, s, &t.id, "launch-template", &tag_list)?;
            idempotency::remember(tx, s, "CreateLaunchTemplate", token, &digest, &t.id)?;
            Ok((t, tags::as_stored(&tag_list)))
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreateLaunchTemplateResult {
        launch_template: Some(wire_template(&t, &tags)),
        warning: None,
    })
}

fn already_exists() -> Ec2Error {
    Ec2Error::new(
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "Launch template name already in use.",
    )
}

/// Top-level members of `over` replace those of `base` (a new version from a source one).
fn overlay(base: &Value, over: &Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Some(b)) = (over.as_object(), out.as_object_mut()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    out
}

pub fn create_version(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateLaunchTemplateVersionRequest,
) -> Result<CreateLaunchTemplateVersionResult, Ec2Error> {
    let w = input.named()?;
    let source = input
        .source_version
        .as_deref()
        .map(parse_version)
        .transpose()?;
    let digest = idempotency::digest(&input);
    let token = input.client_token.as_deref();
    let s = scope(ctx);
    let now = k.now_ms();
    let (t, v) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut t = get_template(tx, s, w)?;
            if let Some(id) =
                idempotency::earlier(tx, s, "CreateLaunchTemplateVersion", token, &digest)?
            {
                let v: LaunchTemplateVersionRecord =
                    tx.get(s, &id)?.ok_or_else(|| Fail(id_not_found(&id)))?;
                return Ok((t, v));
            }
            let base = match source {
                Some(r) => {
                    let n = number_of(&t, r, t.latest_version);
                    get_version(tx, s, &t, n)?.data
                }
                None => Value::Object(Default::default()),
            };
            if t.versions >= MAX_VERSIONS {
                return Err(Fail(Ec2Error::new(
                    "MaxTemplateVersionLimitExceeded",
                    format!("You've reached the limit on the number of launch template versions you can create: {MAX_VERSIONS} for launch template {}.", t.id),
                )));
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            let n = t.last_number + 1;
            let v = LaunchTemplateVersionRecord {
                id: version_id(&t.id, n),
                template_id: t.id.clone(),
                number: n,
                description: input.version_description.clone(),
                created_ms: now,
                created_by: created_by(ctx),
                data: overlay(&base, &to_json(&input.launch_template_data)),
            };
            tx.insert(s, &v)?;
            t.last_number = n;
            t.latest_version = n;
            t.versions += 1;
            tx.update(s, &t)?;
            idempotency::remember(tx, s, "CreateLaunchTemplateVersion", token, &digest, &v.id)?;
            Ok((t, v))
        })
        .map_err(|f: Fail| f.0)?;
    Ok(CreateLaunchTemplateVersionResult {
        launch_template_version: Some(wire_version(&t, &v)),
        warning: None,
    })
}

struct View<'a>(&'a Tagged<LaunchTemplateRecord>);

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        let t = &self.0.item;
        match f {
            F::CreateTime => out(&DateTime(t.created_ms).to_iso8601()),
            F::LaunchTemplateName => out(&t.name),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

/// DescribeLaunchTemplates, before any lookup: the page size.
impl Checks for DescribeLaunchTemplatesRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::paging::max_results(self.max_results, 1, 200).map(drop)
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeLaunchTemplatesRequest,
) -> Result<DescribeLaunchTemplatesResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let names = input.launch_template_names.unwrap_or_default();
    let s = scope(ctx);
    let (page, next) = k
        .store
        .read(|v| {
            // Names become ids: every one named must exist.
            let mut ids = input.launch_template_ids.clone().unwrap_or_default();
            for n in &names {
                match v.get_by_name::<LaunchTemplateRecord>(s, n)? {
                    Some(t) => ids.push(t.id),
                    None => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidLaunchTemplateName.NotFoundException",
                            "At least one of the launch templates specified in the request does not exist.",
                        )))
                    }
                }
            }
            ids.dedup();
            let req = describe::Request {
                op: "DescribeLaunchTemplates",
                ids: &ids,
                not_found: &id_not_found,
                push: Push {
                    tag: fs.exact_tag(),
                    ..Push::default()
                },
                max_results: input.max_results,
                bounds: (1, 200),
                next_token: input.next_token.as_deref(),
            };
            describe::run(v, s, &req, |t: &Tagged<LaunchTemplateRecord>| {
                fs.matches(&View(t))
            })
        })
        .map_err(|f| f.0)?;
    Ok(DescribeLaunchTemplatesResult {
        launch_templates: Some(
            page.iter()
                .map(|t| wire_template(&t.item, &t.tags))
                .collect(),
        ),
        next_token: next,
    })
}

/// The message AWS answers a DescribeLaunchTemplateVersions that names versions but no
/// template, or no versions and no template.
const ALL_TEMPLATES: &str = "To describe the launch template data for all your launch templates, for \u{2018}--versions\u{2019} specify \u{2018}$Latest\u{2019}, \u{2018}$Default\u{2019}, or both, and omit \u{2018}--launch-template-id\u{2019}, \u{2018}--launch-template-name\u{2019}, and version numbers. To describe the launch template data for a specific launch template, specify \u{2018}--launch-template-id\u{2019} or \u{2018}--launch-template-name\u{2019}, and for \u{2018}--versions\u{2019} specify one or more of the following values: \u{2018}$Latest\u{2019}, \u{2018}$Default\u{2019}, or one or more version numbers.";

/// DescribeLaunchTemplateVersions, before any lookup: without a template, only `$Latest`
/// and `$Default` (of every template); then every version's form, the bounds and the page
/// size. The template and the versions named follow.
impl Checks for DescribeLaunchTemplateVersionsRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        let named = self
            .launch_template_id
            .as_deref()
            .is_some_and(|i| !i.is_empty())
            || self
                .launch_template_name
                .as_deref()
                .is_some_and(|n| !n.is_empty());
        if named {
            return self.named().map(drop);
        }
        if self.versions.as_ref().is_none_or(|v| v.is_empty()) {
            return Err(Ec2Error::new("MissingParameter", ALL_TEMPLATES));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let named = self
            .launch_template_id
            .as_deref()
            .is_some_and(|i| !i.is_empty())
            || self
                .launch_template_name
                .as_deref()
                .is_some_and(|n| !n.is_empty());
        for v in self.versions.iter().flatten() {
            let r = parse_version(v)?;
            if !named && matches!(r, VersionRef::Number(_)) {
                return Err(Ec2Error::invalid_value(ALL_TEMPLATES));
            }
        }
        for b in [&self.min_version, &self.max_version].into_iter().flatten() {
            parse_version(b)?;
        }
        crate::core::paging::max_results(self.max_results, 1, 200).map(drop)
    }
}

struct VersionView<'a> {
    t: &'a LaunchTemplateRecord,
    v: &'a LaunchTemplateVersionRecord,
    d: &'a RequestLaunchTemplateData,
}

impl Filterable<VF> for VersionView<'_> {
    fn field(&self, f: VF, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        let d = self.d;
        let tf = |b: bool| if b { "true" } else { "false" };
        let md = d.metadata_options.as_ref();
        match f {
            VF::CreateTime => out(&DateTime(self.v.created_ms).to_iso8601()),
            VF::EbsOptimized => {
                if let Some(b) = d.ebs_optimized {
                    out(tf(b))
                }
            }
            VF::HostResourceGroupArn => {
                if let Some(a) = d
                    .placement
                    .as_ref()
                    .and_then(|p| p.host_resource_group_arn.as_deref())
                {
                    out(a)
                }
            }
            VF::HttpEndpoint => {
                if let Some(x) = md.and_then(|m| m.http_endpoint.as_deref()) {
                    out(x)
                }
            }
            VF::HttpProtocolIpv4 => {
                // The IPv4 endpoint is on wherever the metadata service is.
                let endpoint = md.and_then(|m| m.http_endpoint.as_deref());
                out(if endpoint == Some("disabled") {
                    "disabled"
                } else {
                    "enabled"
                })
            }
            VF::HttpTokens => {
                if let Some(x) = md.and_then(|m| m.http_tokens.as_deref()) {
                    out(x)
                }
            }
            VF::IamInstanceProfile => {
                if let Some(p) = &d.iam_instance_profile {
                    p.arn.iter().chain(p.name.iter()).for_each(|x| out(x));
                }
            }
            VF::ImageId => {
                if let Some(x) = &d.image_id {
                    out(x)
                }
            }
            VF::InstanceType => {
                if let Some(x) = &d.instance_type {
                    out(x)
                }
            }
            VF::IsDefaultVersion => out(tf(self.v.number == self.t.default_version)),
            VF::KernelId => {
                if let Some(x) = &d.kernel_id {
                    out(x)
                }
            }
            VF::LicenseConfigurationArn => {
                for l in d.license_specifications.iter().flatten() {
                    if let Some(a) = &l.license_configuration_arn {
                        out(a)
                    }
                }
            }
            VF::NetworkCardIndex => {
                for n in d.network_interfaces.iter().flatten() {
                    if let Some(i) = n.network_card_index {
                        out(&i.to_string())
                    }
                }
            }
            VF::RamDiskId => {
                if let Some(x) = &d.ram_disk_id {
                    out(x)
                }
            }
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &[]
    }
}

pub fn describe_versions(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeLaunchTemplateVersionsRequest,
) -> Result<DescribeLaunchTemplateVersionsResult, Ec2Error> {
    let fs = filters::compile::<VF>(input.filters.clone(), &[])?;
    let limit = crate::core::paging::max_results(input.max_results, 1, 200)?;
    let op = "DescribeLaunchTemplateVersions";
    let cursor = crate::core::paging::cursor(op, input.next_token.as_deref())?;
    let named = input
        .launch_template_id
        .as_deref()
        .is_some_and(|i| !i.is_empty())
        || input
            .launch_template_name
            .as_deref()
            .is_some_and(|n| !n.is_empty());
    let wanted: Vec<VersionRef> = input
        .versions
        .iter()
        .flatten()
        .map(|v| parse_version(v))
        .collect::<Result<_, _>>()?;
    let bound = |b: &Option<String>| b.as_deref().map(parse_version).transpose();
    let (min, max) = (bound(&input.min_version)?, bound(&input.max_version)?);
    let s = scope(ctx);
    let rows: Vec<(LaunchTemplateRecord, LaunchTemplateVersionRecord)> = k
        .store
        .read(|v| {
            let mut rows = Vec::new();
            if named {
                let w = input.named().map_err(Fail)?;
                let t = get_template(v, s, w)?;
                if wanted.is_empty() {
                    let lo = min.map(|r| number_of(&t, r, t.latest_version)).unwrap_or(1);
                    let hi = max
                        .map(|r| number_of(&t, r, t.latest_version))
                        .unwrap_or(i64::MAX);
                    for ver in versions_of(v, s, &t)? {
                        if (lo..=hi).contains(&ver.number) {
                            rows.push((t.clone(), ver));
                        }
                    }
                } else {
                    let mut numbers: Vec<i64> = wanted
                        .iter()
                        .map(|r| number_of(&t, *r, t.latest_version))
                        .collect();
                    numbers.sort();
                    numbers.dedup();
                    for n in numbers {
                        let ver = get_version(v, s, &t, n)?;
                        rows.push((t.clone(), ver));
                    }
                }
            } else {
                // `$Latest` and `$Default` of every template.
                let all: Vec<LaunchTemplateRecord> = v.list(s, &Query::default())?;
                for t in all {
                    let mut numbers: Vec<i64> = wanted
                        .iter()
                        .map(|r| number_of(&t, *r, t.latest_version))
                        .collect();
                    numbers.sort();
                    numbers.dedup();
                    for n in numbers {
                        if let Some(ver) = v.get(s, &version_id(&t.id, n))? {
                            rows.push((t.clone(), ver));
                        }
                    }
                }
            }
            Ok::<_, Fail>(rows)
        })
        .map_err(|f| f.0)?;
    let matching: Vec<(LaunchTemplateRecord, LaunchTemplateVersionRecord)> = rows
        .into_iter()
        .filter(|(_, v)| cursor.as_deref().is_none_or(|c| v.id.as_str() > c))
        .filter(|(t, v)| {
            let d: RequestLaunchTemplateData =
                serde_json::from_value(v.data.clone()).unwrap_or_default();
            fs.matches(&VersionView { t, v, d: &d })
        })
        .collect();
    let (page, next) = crate::core::paging::page(matching, limit, op, |(_, v)| v.id.clone());
    Ok(DescribeLaunchTemplateVersionsResult {
        launch_template_versions: Some(page.iter().map(|(t, v)| wire_version(t, v)).collect()),
        next_token: next,
    })
}

/// ModifyLaunchTemplate, before any lookup: the template by id or name, then the default
/// version's form. The template and the version follow.
impl Checks for ModifyLaunchTemplateRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        self.named().map(drop)
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        if let Some(v) = &self.default_version {
            parse_version(v)?;
        }
        idempotency::check_token(self.client_token.as_deref())
    }
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyLaunchTemplateRequest,
) -> Result<ModifyLaunchTemplateResult, Ec2Error> {
    let w = input.named()?;
    let default = input
        .default_version
        .as_deref()
        .map(parse_version)
        .transpose()?;
    let s = scope(ctx);
    let (t, tags) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut t = get_template(tx, s, w)?;
            if let Some(r) = default {
                let n = number_of(&t, r, t.latest_version);
                if tx
                    .get::<LaunchTemplateVersionRecord>(s, &version_id(&t.id, n))?
                    .is_none()
                {
                    return Err(Fail(Ec2Error::new(
                        "InvalidLaunchTemplateId.VersionNotFound",
                        format!("The launch template version {n} is not found for the specified launch template."),
                    )));
                }
                if ctx.dry_run {
                    return Err(Fail(Ec2Error::dry_run()));
                }
                t.default_version = n;
                tx.update(s, &t)?;
            } else if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            let tags = tx.tags_of(s, &t.id)?;
            Ok((t, tags))
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ModifyLaunchTemplateResult {
        launch_template: Some(wire_template(&t, &tags)),
    })
}

/// DeleteLaunchTemplate, before any lookup: the template by id or name.
impl Checks for DeleteLaunchTemplateRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        self.named().map(drop)
    }
}

/// The template, every version and its tags.
pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteLaunchTemplateRequest,
) -> Result<DeleteLaunchTemplateResult, Ec2Error> {
    let w = input.named()?;
    let s = scope(ctx);
    let (t, tags) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let t = get_template(tx, s, w)?;
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            let tags = tx.tags_of(s, &t.id)?;
            for v in versions_of(tx, s, &t)? {
                tx.delete::<LaunchTemplateVersionRecord>(s, &v.id)?;
            }
            tx.delete::<LaunchTemplateRecord>(s, &t.id)?;
            Ok((t, tags))
        })
        .map_err(|f: Fail| f.0)?;
    Ok(DeleteLaunchTemplateResult {
        launch_template: Some(wire_template(&t, &tags)),
    })
}

/// DeleteLaunchTemplateVersions, before any lookup: the template by id or name, one to 200
/// version numbers. Each version is then deleted or listed as failed on its own: one that
/// does not exist, and the default version (delete the template to delete that).
impl Checks for DeleteLaunchTemplateVersionsRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        self.named()?;
        if self.versions.is_empty() {
            return Err(Ec2Error::missing_parameter("LaunchTemplateVersion"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        if self.versions.len() > MAX_DELETE {
            return Err(Ec2Error::invalid_value(format!(
                "You can specify at most {MAX_DELETE} launch template versions to delete in one request."
            )));
        }
        for v in &self.versions {
            parse_version(v)?;
        }
        Ok(())
    }
}

pub fn delete_versions(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteLaunchTemplateVersionsRequest,
) -> Result<DeleteLaunchTemplateVersionsResult, Ec2Error> {
    let w = input.named()?;
    let refs: Vec<VersionRef> = input
        .versions
        .iter()
        .map(|v| parse_version(v))
        .collect::<Result<_, _>>()?;
    let s = scope(ctx);
    let (ok, failed) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut t = get_template(tx, s, w)?;
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            let (mut ok, mut failed) = (Vec::new(), Vec::new());
            let mut seen: Vec<i64> = Vec::new();
            for r in refs {
                let n = number_of(&t, r, t.latest_version);
                if seen.contains(&n) {
                    continue;
                }
                seen.push(n);
                let fail = |code: &str, message: String| DeleteLaunchTemplateVersionsResponseErrorItem {
                    launch_template_id: Some(t.id.clone()),
                    launch_template_name: Some(t.name.clone()),
                    version_number: Some(n),
                    response_error: Some(ResponseError {
                        code: Some(code.to_string()),
                        message: Some(message),
                    }),
                };
                if n == t.default_version {
                    failed.push(fail(
                        "unexpectedError",
                        format!("Version {n} is the default version of launch template {}: it cannot be deleted. Make another version the default, or delete the launch template.", t.id),
                    ));
                    continue;
                }
                let id = version_id(&t.id, n);
                if tx.get::<LaunchTemplateVersionRecord>(s, &id)?.is_none() {
                    failed.push(fail(
                        "launchTemplateVersionDoesNotExist",
                        format!("Could not find the specified version {n} for the launch template with ID {}.", t.id),
                    ));
                    continue;
                }
                tx.delete::<LaunchTemplateVersionRecord>(s, &id)?;
                t.versions -= 1;
                ok.push(DeleteLaunchTemplateVersionsResponseSuccessItem {
                    launch_template_id: Some(t.id.clone()),
                    launch_template_name: Some(t.name.clone()),
                    version_number: Some(n),
                });
            }
            if !ok.is_empty() {
                // The newest version left is `$Latest` now (the default is never deleted).
                t.latest_version = versions_of(tx, s, &t)?
                    .last()
                    .map(|v| v.number)
                    .unwrap_or(t.default_version);
                tx.update(s, &t)?;
            }
            Ok((ok, failed))
        })
        .map_err(|f: Fail| f.0)?;
    Ok(DeleteLaunchTemplateVersionsResult {
        successfully_deleted_launch_template_versions: Some(ok),
        unsuccessfully_deleted_launch_template_versions: Some(failed),
    })
}

/// GetLaunchTemplateData: an instance's launch parameters as template data, from what
/// DescribeInstances shows of it and its volumes.
pub fn get_data(
    k: &Kumo,
    ctx: &RequestContext,
    input: GetLaunchTemplateDataRequest,
) -> Result<GetLaunchTemplateDataResult, Ec2Error> {
    let s = scope(ctx);
    let (r, inst, volumes) = k
        .store
        .read(|v| {
            let r = crate::repo::instance::load(k, v, s, std::slice::from_ref(&input.instance_id))?
                .remove(0);
            let tags = v.tags_of(s, &r.id)?;
            let t = Tagged {
                item: r.clone(),
                tags,
            };
            let inst = crate::instances::wire_one(k, v, ctx, &t)?;
            let ids: Vec<&str> = r.volumes.iter().map(String::as_str).collect();
            let volumes: Vec<VolumeRecord> = v.list(
                s,
                &Query {
                    ids: Some(&ids),
                    ..Query::default()
                },
            )?;
            Ok::<_, Fail>((r, inst, volumes))
        })
        .map_err(|f| f.0)?;
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    Ok(GetLaunchTemplateDataResult {
        launch_template_data: Some(data_of(&r, &inst, &volumes)),
    })
}

/// An instance as template data.
fn data_of(
    r: &InstanceRecord,
    inst: &Instance,
    volumes: &[VolumeRecord],
) -> ResponseLaunchTemplateData {
    let user_tags: Vec<Tag> = inst
        .tags
        .iter()
        .flatten()
        .filter(|t| !t.key.as_deref().unwrap_or("").starts_with("aws:"))
        .cloned()
        .collect();
    let interfaces = inst
        .network_interfaces
        .iter()
        .flatten()
        .map(|n| LaunchTemplateInstanceNetworkInterfaceSpecification {
            associate_public_ip_address: Some(n.association.is_some()),
            delete_on_termination: n.attachment.as_ref().and_then(|a| a.delete_on_termination),
            description: n.description.clone(),
            device_index: n.attachment.as_ref().and_then(|a| a.device_index),
            groups: Some(
                n.groups
                    .iter()
                    .flatten()
                    .filter_map(|g| g.group_id.clone())
                    .collect(),
            ),
            network_interface_id: n.network_interface_id.clone(),
            private_ip_address: n.private_ip_address.clone(),
            private_ip_addresses: n.private_ip_addresses.as_ref().map(|a| {
                a.iter()
                    .map(|p| PrivateIpAddressSpecification {
                        primary: p.primary,
                        private_ip_address: p.private_ip_address.clone(),
                    })
                    .collect()
            }),
            subnet_id: n.subnet_id.clone(),
            ..LaunchTemplateInstanceNetworkInterfaceSpecification::default()
        })
        .collect();
    let mappings = inst
        .block_device_mappings
        .iter()
        .flatten()
        .map(|m| {
            let vol = m
                .ebs
                .as_ref()
                .and_then(|e| e.volume_id.as_deref())
                .and_then(|id| volumes.iter().find(|v| v.id == id));
            LaunchTemplateBlockDeviceMapping {
                device_name: m.device_name.clone(),
                ebs: Some(LaunchTemplateEbsBlockDevice {
                    delete_on_termination: m.ebs.as_ref().and_then(|e| e.delete_on_termination),
                    encrypted: vol.map(|v| v.encrypted),
                    iops: vol.and_then(|v| v.iops),
                    throughput: vol.and_then(|v| v.throughput),
                    snapshot_id: vol.and_then(|v| v.snapshot_id.clone()),
                    volume_size: vol.map(|v| v.size),
                    volume_type: vol.map(|v| v.volume_type.clone()),
                    ..LaunchTemplateEbsBlockDevice::default()
                }),
                ..LaunchTemplateBlockDeviceMapping::default()
            }
        })
        .collect();
    ResponseLaunchTemplateData {
        image_id: Some(r.image_id.clone()),
        instance_type: Some(r.instance_type.clone()),
        key_name: r.key_name.clone(),
        ebs_optimized: Some(r.ebs_optimized),
        monitoring: Some(LaunchTemplatesMonitoring {
            enabled: Some(r.monitoring),
        }),
        placement: Some(LaunchTemplatePlacement {
            availability_zone: Some(r.zone.clone()),
            group_name: Some(
                r.placement_group
                    .as_ref()
                    .map(|(_, name)| name.clone())
                    .unwrap_or_default(),
            ),
            partition_number: r.partition_number,
            tenancy: Some(r.tenancy.clone()),
            ..LaunchTemplatePlacement::default()
        }),
        disable_api_termination: Some(r.disable_api_termination),
        disable_api_stop: Some(r.disable_api_stop),
        instance_initiated_shutdown_behavior: Some(r.shutdown_behavior.clone()),
        user_data: r.user_data.clone(),
        credit_specification: r
            .credit_specification
            .as_ref()
            .map(|c| CreditSpecification {
                cpu_credits: Some(c.clone()),
            }),
        cpu_options: inst.cpu_options.as_ref().map(|c| LaunchTemplateCpuOptions {
            core_count: c.core_count,
            threads_per_core: c.threads_per_core,
            ..LaunchTemplateCpuOptions::default()
        }),
        metadata_options: Some(LaunchTemplateInstanceMetadataOptions {
            http_tokens: Some(r.http_tokens.clone()),
            http_put_response_hop_limit: Some(r.http_hop_limit),
            http_endpoint: Some(r.http_endpoint.clone()),
            instance_metadata_tags: Some(r.instance_metadata_tags.clone()),
            ..LaunchTemplateInstanceMetadataOptions::default()
        }),
        hibernation_options: Some(LaunchTemplateHibernationOptions {
            configured: Some(r.hibernation),
        }),
        capacity_reservation_specification: Some(
            LaunchTemplateCapacityReservationSpecificationResponse {
                capacity_reservation_preference: Some(r.capacity_reservation_preference.clone()),
                ..LaunchTemplateCapacityReservationSpecificationResponse::default()
            },
        ),
        network_interfaces: Some(interfaces),
        block_device_mappings: Some(mappings),
        tag_specifications: (!user_tags.is_empty()).then(|| {
            vec![LaunchTemplateTagSpecification {
                resource_type: Some("instance".into()),
                tags: Some(user_tags),
            }]
        }),
        ..ResponseLaunchTemplateData::default()
    }
}

/// RunInstances from a template: the version its `LaunchTemplate` names (`$Default` when it
/// names none) merged beneath the call's own members, and the tags AWS gives an instance
/// launched from a template. The merge:
/// - a member the call gives wins over the template's;
/// - block device mappings merge by device name, network interfaces by device index (the
///   call's entry wins for its name or index);
/// - tag specifications of both apply, per resource type, the call's value winning for a key
///   both give.
pub fn merge(
    k: &Kumo,
    ctx: &RequestContext,
    call: RunInstancesRequest,
) -> Result<(RunInstancesRequest, Vec<Tag>), Ec2Error> {
    let Some(spec) = call.launch_template.clone() else {
        return Ok((call, Vec::new()));
    };
    let w = which(
        spec.launch_template_id.as_deref(),
        spec.launch_template_name.as_deref(),
        BOTH,
    )?;
    let r = spec
        .version
        .as_deref()
        .map(parse_version)
        .transpose()?
        .unwrap_or(VersionRef::Default);
    let s = scope(ctx);
    let (t, v) = k
        .store
        .read(|rd| {
            let t = get_template(rd, s, w)?;
            let n = number_of(&t, r, t.latest_version);
            let v = get_version(rd, s, &t, n)?;
            Ok::<_, Fail>((t, v))
        })
        .map_err(|f| f.0)?;
    let merged = merge_json(&v.data, &serde_json::to_value(&call).unwrap_or(Value::Null));
    let mut out: RunInstancesRequest = serde_json::from_value(merged).map_err(|e| {
        tracing::error!(template = %t.id, error = %e, "a launch template's data does not read as RunInstances");
        Ec2Error::internal()
    })?;
    out.launch_template = Some(spec);
    let system = vec![
        Tag {
            key: Some("aws:ec2launchtemplate:id".into()),
            value: Some(t.id.clone()),
        },
        Tag {
            key: Some("aws:ec2launchtemplate:version".into()),
            value: Some(v.number.to_string()),
        },
    ];
    Ok((out, system))
}

/// The template's data (JSON under the model's names) beneath the call's request (the same).
pub fn merge_json(template: &Value, call: &Value) -> Value {
    let mut out = call.as_object().cloned().unwrap_or_default();
    let Some(t) = template.as_object() else {
        return Value::Object(out);
    };
    for (key, tv) in t {
        // The few members RunInstances names otherwise.
        let key = match key.as_str() {
            "RamDiskId" => "RamdiskId",
            "ElasticGpuSpecifications" => "ElasticGpuSpecification",
            k => k,
        };
        match (key, out.get(key)) {
            (_, None) | (_, Some(Value::Null)) => {
                out.insert(key.to_string(), tv.clone());
            }
            ("BlockDeviceMappings", Some(cv)) => {
                let merged = merge_list(tv, cv, "DeviceName");
                out.insert(key.to_string(), merged);
            }
            ("NetworkInterfaces", Some(cv)) => {
                let merged = merge_list(tv, cv, "DeviceIndex");
                out.insert(key.to_string(), merged);
            }
            ("TagSpecifications", Some(cv)) => {
                let merged = merge_tags(tv, cv);
                out.insert(key.to_string(), merged);
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// Entries of both lists, one per `key` value, the call's winning; the template's first.
fn merge_list(template: &Value, call: &Value, key: &str) -> Value {
    let calls: Vec<Value> = call.as_array().cloned().unwrap_or_default();
    let mut out: Vec<Value> = template
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !calls.iter().any(|c| c.get(key) == t.get(key)))
        .collect();
    out.extend(calls);
    Value::Array(out)
}

/// Tag specifications of both: per resource type, the template's tags with the call's over
/// them (by key).
fn merge_tags(template: &Value, call: &Value) -> Value {
    let mut by_type: Vec<(Value, Vec<Value>)> = Vec::new();
    for spec in template
        .as_array()
        .into_iter()
        .flatten()
        .chain(call.as_array().into_iter().flatten())
    {
        let rt = spec.get("ResourceType").cloned().unwrap_or(Value::Null);
        let tags: Vec<Value> = spec
            .get("Tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let slot = match by_type.iter_mut().position(|(r, _)| *r == rt) {
            Some(i) => &mut by_type[i].1,
            None => {
                by_type.push((rt, Vec::new()));
                &mut by_type.last_mut().expect("just pushed").1
            }
        };
        for tag in tags {
            slot.retain(|x| x.get("Key") != tag.get("Key"));
            slot.push(tag);
        }
    }
    Value::Array(
        by_type
            .into_iter()
            .map(|(rt, tags)| serde_json::json!({"ResourceType": rt, "Tags": tags}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_aws_rule() {
        for ok in ["web", "web-tier_v2", "a.b/c(d)", &"x".repeat(128)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "has space", "ünï", &"x".repeat(129), ""] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(
                e.code(),
                "InvalidLaunchTemplateName.MalformedException",
                "{bad}"
            );
        }
    }

    #[test]
    fn versions_are_latest_default_or_a_positive_number() {
        assert_eq!(parse_version("$Latest").unwrap(), VersionRef::Latest);
        assert_eq!(parse_version("$Default").unwrap(), VersionRef::Default);
        assert_eq!(parse_version("7").unwrap(), VersionRef::Number(7));
        for bad in ["0", "-1", "abc", "$Foo", "", "1.5"] {
            assert_eq!(
                parse_version(bad).unwrap_err().code(),
                "InvalidParameterValue",
                "{bad}"
            );
        }
    }

    /// The merge rules, one row each: (template data, call, merged).
    #[test]
    fn a_launch_merges_the_call_over_the_template() {
        let cases = [
            // A member only the template gives is taken; one the call gives wins.
            (
                json!({"ImageId": "ami-t", "InstanceType": "t3.micro", "KeyName": "k"}),
                json!({"InstanceType": "t3.large", "MinCount": 1, "MaxCount": 1}),
                json!({"ImageId": "ami-t", "InstanceType": "t3.large", "KeyName": "k", "MinCount": 1, "MaxCount": 1}),
            ),
            // Block devices by device name: the call's /dev/xvda replaces the template's,
            // the template's /dev/sdf stays, the call's /dev/sdg joins.
            (
                json!({"BlockDeviceMappings": [
                    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}},
                    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}]}),
                json!({"BlockDeviceMappings": [
                    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20}},
                    {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 2}}]}),
                json!({"BlockDeviceMappings": [
                    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}},
                    {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20}},
                    {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 2}}]}),
            ),
            // Interfaces by device index.
            (
                json!({"NetworkInterfaces": [
                    {"DeviceIndex": 0, "SubnetId": "subnet-t"},
                    {"DeviceIndex": 1, "SubnetId": "subnet-t1"}]}),
                json!({"NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": "subnet-c"}]}),
                json!({"NetworkInterfaces": [
                    {"DeviceIndex": 1, "SubnetId": "subnet-t1"},
                    {"DeviceIndex": 0, "SubnetId": "subnet-c"}]}),
            ),
            // Tags per resource type, the call's value winning for a key both give.
            (
                json!({"TagSpecifications": [
                    {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "t"}, {"Key": "b", "Value": "t"}]},
                    {"ResourceType": "volume", "Tags": [{"Key": "v", "Value": "t"}]}]}),
                json!({"TagSpecifications": [
                    {"ResourceType": "instance", "Tags": [{"Key": "b", "Value": "c"}]}]}),
                json!({"TagSpecifications": [
                    {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "t"}, {"Key": "b", "Value": "c"}]},
                    {"ResourceType": "volume", "Tags": [{"Key": "v", "Value": "t"}]}]}),
            ),
            // The members RunInstances names otherwise.
            (
                json!({"RamDiskId": "ari-1"}),
                json!({}),
                json!({"RamdiskId": "ari-1"}),
            ),
        ];
        for (template, call, want) in cases {
            assert_eq!(merge_json(&template, &call), want, "{template} + {call}");
        }
    }

    #[test]
    fn template_data_reads_as_the_response_and_as_run_instances() {
        let data = RequestLaunchTemplateData {
            image_id: Some("ami-1".into()),
            instance_type: Some("t3.micro".into()),
            security_group_ids: Some(vec!["sg-1".into()]),
            block_device_mappings: Some(vec![LaunchTemplateBlockDeviceMappingRequest {
                device_name: Some("/dev/xvda".into()),
                ebs: Some(LaunchTemplateEbsBlockDeviceRequest {
                    volume_size: Some(20),
                    volume_type: Some("gp3".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            metadata_options: Some(LaunchTemplateInstanceMetadataOptionsRequest {
                http_tokens: Some("required".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stored = to_json(&data);
        // None is left out: only what was given is stored.
        assert_eq!(stored.as_object().unwrap().len(), 5);
        let shown = shown(&stored);
        assert_eq!(shown.image_id.as_deref(), Some("ami-1"));
        assert_eq!(shown.security_group_ids, Some(vec!["sg-1".to_string()]));
        let ebs = shown.block_device_mappings.unwrap()[0].ebs.clone().unwrap();
        assert_eq!(
            (ebs.volume_size, ebs.volume_type.as_deref()),
            (Some(20), Some("gp3"))
        );
        let call = RunInstancesRequest {
            min_count: 1,
            max_count: 1,
            ..Default::default()
        };
        let run: RunInstancesRequest =
            serde_json::from_value(merge_json(&stored, &serde_json::to_value(&call).unwrap()))
                .unwrap();
        assert_eq!(run.image_id.as_deref(), Some("ami-1"));
        assert_eq!(run.instance_type.as_deref(), Some("t3.micro"));
        assert_eq!(
            run.metadata_options.and_then(|m| m.http_tokens).as_deref(),
            Some("required")
        );
        assert_eq!(
            run.block_device_mappings.unwrap()[0]
                .ebs
                .as_ref()
                .and_then(|e| e.volume_size),
            Some(20)
        );
    }
}
