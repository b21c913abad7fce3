//! Writes `ids.rs`: the resource-id shapes the served requests carry (`VpcId`, `VolumeId`, …,
//! as the model types them) and a visitor over every id in a request, nested structures and
//! lists included. The wire crate only names them; which prefix and which `.Malformed` code
//! each kind has is the control plane's rule.

use crate::error::CodegenError;
use crate::model::Model;
use crate::rust::{snake, HEADER};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A string shape that holds a resource id: its name is `…Id` or `…Id<Qualifier>`
/// (`InstanceIdForResolver`), and it is not an enum.
fn is_id(model: &Model, shape: &str) -> Result<bool, CodegenError> {
    let s = model.shape(shape)?;
    if s.kind != "string" || s.enum_values.is_some() {
        return Ok(false);
    }
    Ok(shape.ends_with("Id")
        || shape
            .match_indices("Id")
            .any(|(i, _)| shape[i + 2..].starts_with(|c: char| c.is_ascii_uppercase())))
}

/// What a shape holds of ids: the structures that hold any get a visitor.
struct Walk<'m> {
    model: &'m Model,
    /// (structure, member) → the id shape a plain-string member holds.
    extra: BTreeMap<(String, String), String>,
    kinds: BTreeSet<String>,
    /// Structure → whether it holds an id anywhere beneath it.
    holds: BTreeMap<String, bool>,
}

impl Walk<'_> {
    fn holds(&mut self, shape: &str) -> Result<bool, CodegenError> {
        let s = self.model.shape(shape)?;
        match s.kind.as_str() {
            "string" => {
                let id = is_id(self.model, shape)?;
                if id {
                    self.kinds.insert(shape.to_string());
                }
                Ok(id)
            }
            "list" => {
                let m = s
                    .member
                    .as_ref()
                    .ok_or_else(|| CodegenError::model("list without member"))?;
                self.holds(&m.shape.clone())
            }
            "structure" => {
                if let Some(h) = self.holds.get(shape) {
                    return Ok(*h);
                }
                // A recursive shape is taken to hold none until its members say otherwise.
                self.holds.insert(shape.to_string(), false);
                let mut any = false;
                let members: Vec<(String, String)> = s
                    .members
                    .iter()
                    .map(|(m, r)| (m.clone(), r.shape.clone()))
                    .collect();
                for (m, member_shape) in members {
                    if let Some(kind) = self.extra.get(&(shape.to_string(), m)) {
                        self.kinds.insert(kind.clone());
                        any = true;
                    }
                    any |= self.holds(&member_shape)?;
                }
                self.holds.insert(shape.to_string(), any);
                Ok(any)
            }
            _ => Ok(false),
        }
    }

    /// The statement that visits one member's value `v` of shape `shape`.
    fn visit(&self, shape: &str, v: &str) -> Result<Option<String>, CodegenError> {
        let s = self.model.shape(shape)?;
        Ok(match s.kind.as_str() {
            "string" if self.kinds.contains(shape) => Some(format!("f(IdKind::{shape}, {v})?;")),
            "structure" if self.holds.get(shape) == Some(&true) => Some(format!("{v}.ids(f)?;")),
            "list" => {
                let m = s
                    .member
                    .as_ref()
                    .ok_or_else(|| CodegenError::model("list without member"))?;
                self.visit(&m.shape, "x")?
                    .map(|inner| format!("for x in {v} {{ {inner} }}"))
            }
            _ => None,
        })
    }
}

pub fn generate(
    model: &Model,
    allow: &[&str],
    id_members: &[(&str, &str, &str)],
) -> Result<String, CodegenError> {
    let mut w = Walk {
        model,
        extra: id_members
            .iter()
            .map(|(st, m, k)| ((st.to_string(), m.to_string()), k.to_string()))
            .collect(),
        kinds: BTreeSet::new(),
        holds: BTreeMap::new(),
    };
    let mut inputs = Vec::new();
    for op in allow {
        let i = model.operations[*op]
            .input
            .as_ref()
            .ok_or_else(|| CodegenError::model(format!("{op} has no input")))?;
        w.holds(&i.shape)?;
        inputs.push(i.shape.clone());
    }
    let mut o = String::new();
    o.push_str(HEADER);
    o.push_str("#![allow(clippy::all)]\n");
    o.push_str("use super::shapes::*;\nuse crate::error::Ec2Error;\n\n");
    o.push_str("/// The model's resource-id shapes that a served request carries.\n");
    o.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum IdKind {\n");
    for k in &w.kinds {
        writeln!(o, "    {k},").unwrap();
    }
    o.push_str("}\n\n");
    o.push_str(
        "/// Every resource id a request carries, with the shape that types it, in member order.\n",
    );
    o.push_str("pub trait Ids {\n    fn ids(&self, f: &mut dyn FnMut(IdKind, &str) -> Result<(), Ec2Error>) -> Result<(), Ec2Error>;\n}\n\n");
    let mut structs: BTreeSet<String> = w
        .holds
        .iter()
        .filter(|(_, h)| **h)
        .map(|(s, _)| s.clone())
        .collect();
    structs.extend(inputs);
    for name in &structs {
        let shape = model.shape(name)?;
        writeln!(o, "impl Ids for {name} {{").unwrap();
        o.push_str("    fn ids(&self, f: &mut dyn FnMut(IdKind, &str) -> Result<(), Ec2Error>) -> Result<(), Ec2Error> {\n");
        if w.holds.get(name) != Some(&true) {
            o.push_str("        let _ = f;\n");
        }
        for (m, r) in &shape.members {
            let field = snake(m);
            let required = shape.required.contains(m);
            let stmt = match w.extra.get(&(name.clone(), m.clone())) {
                Some(kind) if model.shape(&r.shape)?.kind == "list" => {
                    Some(format!("for x in v {{ f(IdKind::{kind}, x)?; }}"))
                }
                Some(kind) => Some(format!("f(IdKind::{kind}, v)?;")),
                None => w.visit(&r.shape, "v")?,
            };
            if let Some(stmt) = stmt {
                if required {
                    writeln!(o, "        {{ let v = &self.{field}; {stmt} }}").unwrap();
                } else {
                    writeln!(o, "        if let Some(v) = &self.{field} {{ {stmt} }}").unwrap();
                }
            }
        }
        o.push_str("        Ok(())\n    }\n}\n\n");
    }
    Ok(o)
}
