//! How a reference set is defined: named lists, each with its kind, PDQ
//! radius, minimum quality and weight, from a TOML file or `key=value`
//! options.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::formats::Format;
use crate::{Algo, LoadError};

/// PDQ radius a list gets unless it says otherwise: Meta's recommended
/// match threshold.
pub const DEFAULT_PDQ_RADIUS: u32 = 31;
/// PDQ quality below which a near match is not trusted, unless a list says otherwise.
pub const DEFAULT_MIN_QUALITY: u8 = 50;
/// Largest PDQ radius a list may ask for: beyond it, unrelated images match.
pub const MAX_PDQ_RADIUS: u32 = 128;

/// What a hit on a list means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// Known material: a hit is a case.
    #[default]
    Match,
    /// Known benign images that keep causing false alarms: a hit suppresses
    /// the case.
    Ignore,
}

impl ListKind {
    /// `match` or `ignore`.
    pub fn name(self) -> &'static str {
        match self {
            ListKind::Match => "match",
            ListKind::Ignore => "ignore",
        }
    }
}

/// One list of a set: where it comes from and how it is trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// Unique within the set; letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// `match` (default) or `ignore`.
    #[serde(default)]
    pub kind: ListKind,
    /// The list file (gzip-compressed or not).
    pub file: PathBuf,
    /// Its layout (default: detected from the content).
    #[serde(default)]
    pub format: Format,
    /// The algorithm of a hash-per-line file.
    #[serde(default)]
    pub algo: Option<Algo>,
    /// PDQ Hamming radius of a near match (default 31).
    #[serde(default = "default_radius")]
    pub pdq_radius: u32,
    /// Images whose PDQ quality is lower are not near-matched (default 50).
    #[serde(default = "default_quality")]
    pub min_quality: u8,
    /// Trust in the list, 0..=1, used by scoring (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_radius() -> u32 {
    DEFAULT_PDQ_RADIUS
}
fn default_quality() -> u8 {
    DEFAULT_MIN_QUALITY
}
fn default_weight() -> f64 {
    1.0
}

fn spec_error(context: impl Into<String>, detail: impl Into<String>) -> LoadError {
    LoadError::Spec { context: context.into(), detail: detail.into() }
}

impl ListSpec {
    /// A `match` list of one file with default settings, named after the file.
    pub fn for_file(file: &Path) -> Self {
        let stem = file.file_name().and_then(|n| n.to_str()).unwrap_or("list");
        let name: String = stem
            .split('.')
            .next()
            .unwrap_or("list")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        ListSpec {
            name: if name.is_empty() { "list".into() } else { name },
            kind: ListKind::Match,
            file: file.to_path_buf(),
            format: Format::Auto,
            algo: None,
            pdq_radius: DEFAULT_PDQ_RADIUS,
            min_quality: DEFAULT_MIN_QUALITY,
            weight: 1.0,
        }
    }

    /// Parses `file=PATH[,name=N][,kind=match|ignore][,format=F][,algo=A][,radius=R][,min-quality=Q][,weight=W]`,
    /// the form of `--list` options.
    pub fn parse_kv(spec: &str) -> Result<Self, LoadError> {
        let ctx = format!("--list {spec:?}");
        let mut file = None;
        let mut pairs = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                spec_error(
                    &ctx,
                    format!(
                        "{part:?} is not key=value (keys: file, name, kind, format, algo, radius, min-quality, weight)"
                    ),
                )
            })?;
            let (k, v) = (k.trim().to_ascii_lowercase().replace('_', "-"), v.trim());
            if k == "file" {
                file = Some(PathBuf::from(v));
            } else {
                pairs.push((k, v.to_string()));
            }
        }
        let file = file.ok_or_else(|| spec_error(&ctx, "file=PATH is required"))?;
        let mut list = ListSpec::for_file(&file);
        for (k, v) in pairs {
            let bad = |what: &str| spec_error(format!("{ctx}: {k}"), format!("{v:?} is not {what}"));
            match k.as_str() {
                "name" => list.name = v,
                "kind" => {
                    list.kind = match v.as_str() {
                        "match" => ListKind::Match,
                        "ignore" => ListKind::Ignore,
                        _ => return Err(bad("match or ignore")),
                    }
                }
                "format" => list.format = v.parse().map_err(|e: String| spec_error(format!("{ctx}: format"), e))?,
                "algo" => list.algo = Some(v.parse().map_err(|_| bad("md5, sha1, sha256, blake3 or pdq"))?),
                "radius" | "pdq-radius" => list.pdq_radius = v.parse().map_err(|_| bad("a whole number"))?,
                "min-quality" => list.min_quality = v.parse().map_err(|_| bad("a whole number 0..=100"))?,
                "weight" => list.weight = v.parse().map_err(|_| bad("a number 0..=1"))?,
                other => {
                    return Err(spec_error(
                        &ctx,
                        format!(
                            "unknown key {other:?} (keys: file, name, kind, format, algo, radius, min-quality, weight)"
                        ),
                    ))
                }
            }
        }
        list.validate(&ctx)?;
        Ok(list)
    }

    /// Checks ranges and the name; `context` says where the list was defined.
    pub fn validate(&self, context: &str) -> Result<(), LoadError> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(spec_error(
                format!("{context}: name"),
                format!("{:?}: use letters, digits, '.', '_' and '-'", self.name),
            ));
        }
        if self.pdq_radius > MAX_PDQ_RADIUS {
            return Err(spec_error(
                format!("{context}: pdq_radius"),
                format!("{} is larger than {MAX_PDQ_RADIUS}; unrelated images would match", self.pdq_radius),
            ));
        }
        if self.min_quality > 100 {
            return Err(spec_error(
                format!("{context}: min_quality"),
                format!("{} is not in 0..=100", self.min_quality),
            ));
        }
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(spec_error(format!("{context}: weight"), format!("{} is not in 0..=1", self.weight)));
        }
        Ok(())
    }
}

/// A whole reference set: a name and its lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    /// The set's name, shown with every hit.
    #[serde(default = "default_set_name")]
    pub name: String,
    /// Its lists, in priority order.
    #[serde(rename = "list")]
    pub lists: Vec<ListSpec>,
}

fn default_set_name() -> String {
    "reference".to_string()
}

impl SetSpec {
    /// A set of the given lists; names must be unique.
    pub fn new(name: impl Into<String>, lists: Vec<ListSpec>) -> Result<Self, LoadError> {
        let spec = SetSpec { name: name.into(), lists };
        spec.validate("reference set")?;
        Ok(spec)
    }

    /// Reads a TOML definition:
    ///
    /// ```toml
    /// name = "hotline"
    /// [[list]]
    /// name = "confirmed"
    /// file = "confirmed.csv.gz"   # relative to this file
    /// pdq_radius = 31
    /// [[list]]
    /// name = "benign"
    /// kind = "ignore"
    /// file = "benign.txt"
    /// algo = "md5"
    /// ```
    pub fn from_toml_file(path: &Path) -> Result<Self, LoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| LoadError::Io { file: path.to_path_buf(), source })?;
        let mut spec: SetSpec =
            toml::from_str(&text).map_err(|e| spec_error(path.display().to_string(), e.message().to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for list in &mut spec.lists {
            if list.file.is_relative() {
                list.file = base.join(&list.file);
            }
        }
        spec.validate(&path.display().to_string())?;
        Ok(spec)
    }

    fn validate(&self, context: &str) -> Result<(), LoadError> {
        if self.lists.is_empty() {
            return Err(spec_error(context, "no lists: a set needs at least one [[list]]"));
        }
        if self.lists.len() > usize::from(u16::MAX) {
            return Err(spec_error(context, "too many lists"));
        }
        for (i, list) in self.lists.iter().enumerate() {
            list.validate(&format!("{context}: list {}", i + 1))?;
            if self.lists[..i].iter().any(|l| l.name == list.name) {
                return Err(spec_error(
                    format!("{context}: list {}", i + 1),
                    format!("name {:?} is used twice", list.name),
                ));
            }
        }
        Ok(())
    }
}
