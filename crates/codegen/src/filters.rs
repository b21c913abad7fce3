//! Writes `filters.rs`: for each allow-listed operation that takes `Filter.N`, an enum of the
//! filter names the model's documentation of that member lists (the EC2 API reference's list),
//! plus the aliases AWS also accepts. Kumo's filter code matches on these enums without a
//! wildcard arm, so a name the reference adds fails to compile until it is served, refused, or
//! written down as empty for a stated reason (a field AWS leaves out where Kumo has nothing
//! behind it, such as an Outpost's); none is empty by omission.

use crate::error::CodegenError;
use crate::model::Model;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The documentation's tag entries: they select `tag:<key>`, `tag-key` and `tag-value`, which
/// the filter engine serves for every tagged resource.
const TAG_NAMES: &[&str] = &["tag", "tag:<key>", "tag-key", "tag-value"];

/// One operation's filter names.
struct Op {
    name: String,
    tags: bool,
    /// (variant, documented name, other names AWS accepts for it)
    names: Vec<(String, String, Vec<String>)>,
}

/// The names listed in a `Filters` member's documentation: the `<code>` that opens each item
/// of the outer list (a nested list gives one filter's values, as `state`'s `active`).
fn documented(doc: &str) -> Vec<String> {
    let doc = doc.replace("&lt;", "<").replace("&gt;", ">");
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    let mut depth = 0usize;
    loop {
        let next = ["<ul>", "</ul>", "<li>"]
            .iter()
            .filter_map(|t| rest.find(t).map(|i| (i, *t)))
            .min();
        let Some((i, tag)) = next else { break };
        rest = &rest[i + tag.len()..];
        match tag {
            "<ul>" => {
                depth += 1;
                continue;
            }
            "</ul>" => {
                depth = depth.saturating_sub(1);
                continue;
            }
            _ if depth > 1 => continue,
            _ => {}
        }
        let item = rest.trim_start();
        let Some(item) = item.strip_prefix("<p>").map(str::trim_start) else {
            continue;
        };
        let Some(item) = item.strip_prefix("<code>") else {
            continue;
        };
        let Some(end) = item.find("</code>") else {
            continue;
        };
        let mut name = item[..end].trim().to_string();
        // `<code>tag</code>:<key>` is written both inside and outside the code element.
        if name == "tag" && item[end + 7..].starts_with(":<key>") {
            name = "tag:<key>".into();
        }
        out.push(name);
    }
    out
}

/// `block-device-mapping.volume-id` → `BlockDeviceMappingVolumeId`.
fn variant(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn plan(
    model: &Model,
    allow: &[&str],
    aliases: &[(&str, &str, &str)],
    extra: &[(&str, &str)],
    tagged: &[&str],
) -> Result<Vec<Op>, CodegenError> {
    let mut ops = Vec::new();
    for op in allow {
        let Some(input) = model.operations.get(*op).and_then(|o| o.input.as_ref()) else {
            continue;
        };
        let shape = model.shape(&input.shape)?;
        let Some(member) = ["Filters", "Filter"]
            .iter()
            .filter_map(|m| shape.members.get(*m))
            .find(|m| m.shape == "FilterList")
        else {
            continue;
        };
        let doc = member.documentation.as_deref().unwrap_or_default();
        let mut names: Vec<String> = documented(doc);
        let tags = tagged.contains(op) || names.iter().any(|n| TAG_NAMES.contains(&n.as_str()));
        names.retain(|n| !TAG_NAMES.contains(&n.as_str()));
        names.extend(
            extra
                .iter()
                .filter(|(o, _)| o == op)
                .map(|(_, n)| n.to_string()),
        );
        let mut by_variant: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for n in names {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:_".contains(c))
            {
                return Err(CodegenError::model(format!(
                    "{op}: cannot read the filter name {n:?}"
                )));
            }
            let v = variant(&n);
            if let Some((other, _)) = by_variant.get(&v) {
                if *other == n {
                    continue;
                }
                return Err(CodegenError::model(format!(
                    "{op}: filters {other} and {n} would share the name {v}"
                )));
            }
            by_variant.insert(v, (n, Vec::new()));
        }
        for (o, alias, canonical) in aliases.iter().filter(|(o, _, _)| o == op) {
            let entry = by_variant
                .values_mut()
                .find(|(n, _)| n == canonical)
                .ok_or_else(|| {
                    CodegenError::model(format!("{o}: alias {alias} of an unknown {canonical}"))
                })?;
            entry.1.push(alias.to_string());
        }
        let mut names: Vec<_> = by_variant
            .into_iter()
            .map(|(v, (n, a))| (v, n, a))
            .collect();
        names.sort_by(|a, b| a.1.cmp(&b.1));
        ops.push(Op {
            name: op.to_string(),
            tags,
            names,
        });
    }
    Ok(ops)
}

pub fn generate(
    model: &Model,
    allow: &[&str],
    aliases: &[(&str, &str, &str)],
    extra: &[(&str, &str)],
    tagged: &[&str],
) -> Result<String, CodegenError> {
    let ops = plan(model, allow, aliases, extra, tagged)?;
    let mut o = String::new();
    o.push_str(crate::rust::HEADER);
    o.push_str("//! Each Describe operation's filter names, from the model's documentation.\n\n");
    o.push_str("use crate::FilterName;\n\n");
    for op in &ops {
        let _ = writeln!(o, "/// The filter names of `{}`.", op.name);
        o.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n");
        let _ = writeln!(o, "pub enum {} {{", op.name);
        for (v, n, a) in &op.names {
            if a.is_empty() {
                let _ = writeln!(o, "    /// `{n}`");
            } else {
                let also: Vec<String> = a.iter().map(|x| format!("`{x}`")).collect();
                let _ = writeln!(o, "    /// `{n}` (also {})", also.join(", "));
            }
            let _ = writeln!(o, "    {v},");
        }
        o.push_str("}\n\n");
        let _ = writeln!(o, "impl FilterName for {} {{", op.name);
        let _ = writeln!(o, "    const TAGS: bool = {};", op.tags);
        o.push_str("    const ALL: &'static [Self] = &[");
        for (v, _, _) in &op.names {
            let _ = write!(o, "Self::{v}, ");
        }
        o.push_str("];\n");
        if op.names.is_empty() {
            // Tags only: no name of its own parses.
            o.push_str("    fn parse(_name: &str) -> Option<Self> {\n        None\n    }\n");
        } else {
            o.push_str("    fn parse(name: &str) -> Option<Self> {\n        Some(match name {\n");
            for (v, n, a) in &op.names {
                let mut pats = vec![format!("{n:?}")];
                pats.extend(a.iter().map(|x| format!("{x:?}")));
                let _ = writeln!(o, "            {} => Self::{v},", pats.join(" | "));
            }
            o.push_str("            _ => return None,\n        })\n    }\n");
        }
        o.push_str("    fn name(self) -> &'static str {\n        match self {\n");
        for (v, n, _) in &op.names {
            let _ = writeln!(o, "            Self::{v} => {n:?},");
        }
        o.push_str("        }\n    }\n}\n\n");
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_from_the_list_items() {
        let doc = "<p>The filters.</p> <ul> <li> <p> <code>cidr</code> - The CIDR (<code>/28</code>).</p> </li> \
                   <li> <p> <code>tag</code>:&lt;key&gt; - A tag.</p> </li> <li> <p><code>tag-key</code> - k</p> </li> \
                   <li> <p>not a name</p> </li> </ul>";
        assert_eq!(documented(doc), ["cidr", "tag:<key>", "tag-key"]);
    }

    #[test]
    fn variants_are_camel_case() {
        assert_eq!(
            variant("block-device-mapping.volume-id"),
            "BlockDeviceMappingVolumeId"
        );
        assert_eq!(variant("isDefault"), "IsDefault");
        assert_eq!(variant("is-default"), "IsDefault");
    }
}
