//! T-family CPU credit settings: per-account defaults per family, per-instance modes, and
//! the ledger an operator can read (`kumo admin credits`).

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::paging;
use crate::records::instance::InstanceRecord;
use crate::repo::instance::load;
use crate::repo::instance::visible;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeInstanceCreditSpecifications as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::credits::{self, burst};
use kumo_model::filter::Filterable;
use kumo_store::{Index, Query, Read, Record, Scope, Tx};
use serde::{Deserialize, Serialize};

/// An account's default credit mode for one family in one region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditDefault {
    /// The family: `t2`, `t3`, `t3a` or `t4g`.
    pub id: String,
    pub mode: String,
}

impl Record for CreditDefault {
    const KIND: &'static str = "credit-default";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index::default()
    }
}

fn check_mode(m: &str) -> Result<(), Ec2Error> {
    if m != "standard" && m != "unlimited" {
        return Err(Ec2Error::invalid_value(format!(
            "Value ({m}) for parameter cpuCredits is invalid. Expected 'standard' or 'unlimited'."
        )));
    }
    Ok(())
}

fn check_family(f: &str) -> Result<(), Ec2Error> {
    if !credits::is_family(f) {
        return Err(Ec2Error::invalid_value(format!("Value ({f}) for parameter instanceFamily is invalid. Expected one of t2, t3, t3a, t4g.")));
    }
    Ok(())
}

/// The account's default mode for a family.
pub fn default_for<V: Read>(v: &V, s: Scope, family: &str) -> Result<String, Fail> {
    Ok(v.get::<CreditDefault>(s, family)?
        .map(|d| d.mode)
        .unwrap_or_else(|| credits::default_mode(family).to_string()))
}

/// The credit mode and opening balance of a new instance: `None` for types without credits.
pub fn for_launch(
    tx: &Tx,
    s: Scope,
    instance_type: &str,
    requested: Option<&str>,
) -> Result<Option<(String, f64)>, Fail> {
    let Some(b) = burst(instance_type) else {
        if requested.is_some() {
            return Err(Fail(Ec2Error::new(
                "InvalidParameterCombination",
                format!("The instance type {instance_type} does not support CPU credits: CreditSpecification applies to burstable performance instances only."),
            )));
        }
        return Ok(None);
    };
    let mode = match requested {
        Some(m) => {
            check_mode(m)?;
            m.to_string()
        }
        None => default_for(tx, s, b.family)?,
    };
    let opening = b.launch_credits(&mode);
    Ok(Some((mode, opening)))
}

/// GetDefaultCreditSpecification, before any lookup: a burstable family.
impl Checks for GetDefaultCreditSpecificationRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        check_family(&self.instance_family)
    }
}

/// ModifyDefaultCreditSpecification, before any lookup: a burstable family and a mode.
impl Checks for ModifyDefaultCreditSpecificationRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        check_family(&self.instance_family)?;
        check_mode(&self.cpu_credits)
    }
}

pub fn get_default(
    k: &Kumo,
    ctx: &RequestContext,
    input: GetDefaultCreditSpecificationRequest,
) -> Result<GetDefaultCreditSpecificationResult, Ec2Error> {
    let mode = k
        .store
        .read(|v| default_for(v, scope(ctx), &input.instance_family))
        .map_err(|f| f.0)?;
    Ok(GetDefaultCreditSpecificationResult {
        instance_family_credit_specification: Some(InstanceFamilyCreditSpecification {
            instance_family: Some(input.instance_family),
            cpu_credits: Some(mode),
        }),
    })
}

pub fn modify_default(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyDefaultCreditSpecificationRequest,
) -> Result<ModifyDefaultCreditSpecificationResult, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let rec = CreditDefault {
                id: input.instance_family.clone(),
                mode: input.cpu_credits.clone(),
            };
            if !tx.update(s, &rec)? {
                tx.insert(s, &rec)?;
            }
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ModifyDefaultCreditSpecificationResult {
        instance_family_credit_specification: Some(InstanceFamilyCreditSpecification {
            instance_family: Some(input.instance_family),
            cpu_credits: Some(input.cpu_credits),
        }),
    })
}

pub fn modify_instances(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyInstanceCreditSpecificationRequest,
) -> Result<ModifyInstanceCreditSpecificationResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    let (ok, failed) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for spec in &input.instance_credit_specifications {
                let fail =
                    |code: &str, message: String| UnsuccessfulInstanceCreditSpecificationItem {
                        instance_id: Some(spec.instance_id.clone()),
                        error: Some(UnsuccessfulInstanceCreditSpecificationItemError {
                            code: Some(code.into()),
                            message: Some(message),
                        }),
                    };
                let mode = spec.cpu_credits.clone().unwrap_or_default();
                if check_mode(&mode).is_err() {
                    failed.push(fail(
                        "InvalidParameterValue",
                        format!("Value ({mode}) for parameter cpuCredits is invalid."),
                    ));
                    continue;
                }
                let mut r = match load(k, tx, s, std::slice::from_ref(&spec.instance_id)) {
                    Ok(mut v) => v.remove(0),
                    Err(Fail(e)) => {
                        failed.push(fail(e.code(), e.message().to_string()));
                        continue;
                    }
                };
                if r.credit_specification.is_none()
                    || r.state == kumo_model::lifecycle::State::Terminated
                {
                    failed.push(fail(
                        "InvalidInstanceID",
                        format!(
                            "The instance '{}' is not a burstable performance instance.",
                            r.id
                        ),
                    ));
                    continue;
                }
                r.run_credits(now);
                r.credit_specification = Some(mode);
                tx.update(s, &r)?;
                ok.push(SuccessfulInstanceCreditSpecificationItem {
                    instance_id: Some(r.id),
                });
            }
            Ok::<_, Fail>((ok, failed))
        })
        .map_err(|f| f.0)?;
    Ok(ModifyInstanceCreditSpecificationResult {
        successful_instance_credit_specifications: Some(ok),
        unsuccessful_instance_credit_specifications: Some(failed),
    })
}

struct CreditView<'a>(&'a InstanceRecord);

impl Filterable<F> for CreditView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        match f {
            F::InstanceId => out(&self.0.id),
        }
    }
}

pub fn describe_instances(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeInstanceCreditSpecificationsRequest,
) -> Result<DescribeInstanceCreditSpecificationsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let after = paging::cursor(
        "DescribeInstanceCreditSpecifications",
        input.next_token.as_deref(),
    )?;
    let ids = input.instance_ids.unwrap_or_default();
    let s = scope(ctx);
    let now = k.now_ms();
    let recs: Vec<InstanceRecord> = k
        .store
        .read(|v| {
            if ids.is_empty() {
                v.list(s, &Query::default()).map_err(Fail::from)
            } else {
                load(k, v, s, &ids)
            }
        })
        .map_err(|f| f.0)?;
    let mut items: Vec<InstanceCreditSpecification> = recs
        .iter()
        .filter(|r| {
            visible(r, now, k.options.transition_ms)
                && r.state != kumo_model::lifecycle::State::Terminated
                && r.credit_specification.is_some()
        })
        .filter(|r| after.as_deref().is_none_or(|a| r.id.as_str() > a))
        .filter(|r| fs.matches(&CreditView(r)))
        .map(|r| InstanceCreditSpecification {
            instance_id: Some(r.id.clone()),
            cpu_credits: r.credit_specification.clone(),
        })
        .collect();
    items.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let (page, next) = paging::page(items, limit, "DescribeInstanceCreditSpecifications", |i| {
        i.instance_id.clone().unwrap_or_default()
    });
    Ok(DescribeInstanceCreditSpecificationsResult {
        instance_credit_specifications: Some(page),
        next_token: next,
    })
}

/// An instance's credit ledger, for the operator.
pub fn ledger(
    k: &Kumo,
    account: &str,
    region: &str,
    instance: &str,
) -> Result<serde_json::Value, Ec2Error> {
    let s = Scope { account, region };
    let r = k
        .store
        .read(|v| load(k, v, s, &[instance.to_string()]))
        .map_err(|f| f.0)?
        .remove(0);
    let Some(b) = burst(&r.instance_type) else {
        return Err(Ec2Error::invalid_value(format!(
            "The instance '{instance}' is a {} and has no CPU credits.",
            r.instance_type
        )));
    };
    let mode = r.credit_specification.clone().unwrap_or_default();
    let l = credits::Ledger {
        balance: r.credit_balance,
        surplus: r.credit_surplus,
    };
    Ok(serde_json::json!({
        "instance_id": r.id,
        "instance_type": r.instance_type,
        "state": r.state.name(),
        "cpu_credits": mode,
        "balance": (r.credit_balance * 1000.0).round() / 1000.0,
        "surplus": (r.credit_surplus * 1000.0).round() / 1000.0,
        "earned_per_hour": b.earned_per_hour(),
        "max_balance": b.max_balance(),
        "baseline_percent_per_vcpu": b.baseline_pct,
        "vcpus": b.vcpus,
        "cpu_usage_percent": (r.cpu_usage_pct * 10.0).round() / 10.0,
        "usage_source": if k.compute.driver.runs_guests() {
            format!(
                "{} driver: the guest's cgroup CPU time over the last second",
                k.driver_name()
            )
        } else {
            "null driver: no guest runs, so usage is 0 %".to_string()
        },
        "throttled_to_baseline": crate::host::capped(k, &r.id).unwrap_or(l.throttled(&mode)),
    }))
}
