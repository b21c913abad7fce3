//! The parts of a botocore `service-2.json` model that the generator reads.

use crate::error::CodegenError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

#[derive(Deserialize)]
pub struct Model {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: BTreeMap<String, Shape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub xml_namespace: String,
}

#[derive(Deserialize)]
pub struct Operation {
    pub input: Option<ShapeRef>,
    pub output: Option<ShapeRef>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    pub location_name: Option<String>,
    pub query_name: Option<String>,
    #[serde(default)]
    pub idempotency_token: bool,
    pub documentation: Option<String>,
}

#[derive(Deserialize)]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub members: BTreeMap<String, ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    pub member: Option<ShapeRef>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
}

impl Model {
    pub fn load(path: &Path) -> Result<Model, CodegenError> {
        let read = |source| CodegenError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .map_err(read)?;
        serde_json::from_str(&text).map_err(|source| CodegenError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn shape(&self, name: &str) -> Result<&Shape, CodegenError> {
        self.shapes
            .get(name)
            .ok_or_else(|| CodegenError::model(format!("the model has no shape {name}")))
    }
}
