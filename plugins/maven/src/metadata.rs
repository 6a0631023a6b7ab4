//! `maven-metadata.xml`: parsed (from upstreams, to tell a metadata
//! document from an error page, and from clients, for the plugin prefixes
//! they deploy) and written (for hosted remotes, where the gateway keeps
//! the metadata itself).
//!
//! One model serves all three levels, as in Maven's own: the group level
//! uses `plugins`, the artifact level `versioning` with `versions`, a
//! snapshot version's directory `versioning` with `snapshot` and
//! `snapshotVersions`.

use artgate_sdk::markup::escape;

/// Largest metadata document parsed or kept (real ones are a few KiB; a
/// version list of thousands of versions stays well below).
pub const LIMIT: usize = 4 << 20;

/// The current file of one classifier and extension of a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotVersion {
    /// The classifier, or empty.
    pub classifier: String,
    /// The extension (`jar`, `pom`).
    pub extension: String,
    /// The file's version (`1.0-20261207.101500-3`).
    pub value: String,
    /// When it was deployed (`20261207101500`).
    pub updated: String,
}

/// A Maven plugin of a group and its prefix (`mvn prefix:goal`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plugin {
    /// The plugin's name.
    pub name: String,
    /// Its prefix.
    pub prefix: String,
    /// Its artifactId.
    pub artifact_id: String,
}

/// A `maven-metadata.xml` document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `groupId`.
    pub group_id: String,
    /// `artifactId`.
    pub artifact_id: String,
    /// `version` (snapshot level).
    pub version: String,
    /// `versioning/latest`.
    pub latest: String,
    /// `versioning/release`.
    pub release: String,
    /// `versioning/versions`, in document order.
    pub versions: Vec<String>,
    /// `versioning/lastUpdated`.
    pub last_updated: String,
    /// `versioning/snapshot`: the latest timestamp and build number.
    pub snapshot: Option<(String, u32)>,
    /// `versioning/snapshotVersions`.
    pub snapshot_versions: Vec<SnapshotVersion>,
    /// `plugins`.
    pub plugins: Vec<Plugin>,
}

/// Why a document is not metadata.
#[derive(Debug, PartialEq, Eq)]
pub struct NotMetadata(pub String);

impl std::fmt::Display for NotMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotMetadata {}

/// The text of `node`'s first child element named `name`, trimmed.
fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    child(node, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// Parses a metadata document: a `<metadata>` root element (any
/// namespace); unknown elements are ignored.
pub fn parse(body: &[u8]) -> Result<Metadata, NotMetadata> {
    if body.len() > LIMIT {
        return Err(NotMetadata(format!(
            "it is larger than {} MiB",
            LIMIT >> 20
        )));
    }
    let text = std::str::from_utf8(body).map_err(|_| NotMetadata("it is not UTF-8".into()))?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| NotMetadata(format!("it is not well-formed XML ({e})")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "metadata" {
        return Err(NotMetadata(format!(
            "its root element is <{}>, not <metadata>",
            root.tag_name().name()
        )));
    }
    let mut m = Metadata {
        group_id: child_text(root, "groupId"),
        artifact_id: child_text(root, "artifactId"),
        version: child_text(root, "version"),
        ..Metadata::default()
    };
    if let Some(v) = child(root, "versioning") {
        m.latest = child_text(v, "latest");
        m.release = child_text(v, "release");
        m.last_updated = child_text(v, "lastUpdated");
        if let Some(vs) = child(v, "versions") {
            m.versions = children(vs, "version")
                .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
                .filter(|t| !t.is_empty())
                .collect();
        }
        if let Some(s) = child(v, "snapshot") {
            let ts = child_text(s, "timestamp");
            let build = child_text(s, "buildNumber").parse().unwrap_or(0);
            if !ts.is_empty() {
                m.snapshot = Some((ts, build));
            }
        }
        if let Some(svs) = child(v, "snapshotVersions") {
            m.snapshot_versions = children(svs, "snapshotVersion")
                .map(|n| SnapshotVersion {
                    classifier: child_text(n, "classifier"),
                    extension: child_text(n, "extension"),
                    value: child_text(n, "value"),
                    updated: child_text(n, "updated"),
                })
                .collect();
        }
    }
    if let Some(ps) = child(root, "plugins") {
        m.plugins = children(ps, "plugin")
            .map(|n| Plugin {
                name: child_text(n, "name"),
                prefix: child_text(n, "prefix"),
                artifact_id: child_text(n, "artifactId"),
            })
            .collect();
    }
    Ok(m)
}

/// Appends `<name>text</name>` on its own line at `indent`, if `text` is
/// not empty.
fn element(out: &mut String, indent: usize, name: &str, text: &str) {
    if !text.is_empty() {
        out.push_str(&format!(
            "{:indent$}<{name}>{}</{name}>\n",
            "",
            escape(text)
        ));
    }
}

impl Metadata {
    /// The document, as Maven writes it.
    pub fn render(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(if self.snapshot_versions.is_empty() {
            "<metadata>\n"
        } else {
            "<metadata modelVersion=\"1.1.0\">\n"
        });
        element(&mut out, 2, "groupId", &self.group_id);
        element(&mut out, 2, "artifactId", &self.artifact_id);
        element(&mut out, 2, "version", &self.version);
        let has_versioning = !(self.latest.is_empty()
            && self.release.is_empty()
            && self.versions.is_empty()
            && self.last_updated.is_empty()
            && self.snapshot.is_none()
            && self.snapshot_versions.is_empty());
        if has_versioning {
            out.push_str("  <versioning>\n");
            element(&mut out, 4, "latest", &self.latest);
            element(&mut out, 4, "release", &self.release);
            if let Some((ts, build)) = &self.snapshot {
                out.push_str("    <snapshot>\n");
                element(&mut out, 6, "timestamp", ts);
                element(&mut out, 6, "buildNumber", &build.to_string());
                out.push_str("    </snapshot>\n");
            }
            if !self.versions.is_empty() {
                out.push_str("    <versions>\n");
                for v in &self.versions {
                    element(&mut out, 6, "version", v);
                }
                out.push_str("    </versions>\n");
            }
            element(&mut out, 4, "lastUpdated", &self.last_updated);
            if !self.snapshot_versions.is_empty() {
                out.push_str("    <snapshotVersions>\n");
                for sv in &self.snapshot_versions {
                    out.push_str("      <snapshotVersion>\n");
                    element(&mut out, 8, "classifier", &sv.classifier);
                    element(&mut out, 8, "extension", &sv.extension);
                    element(&mut out, 8, "value", &sv.value);
                    element(&mut out, 8, "updated", &sv.updated);
                    out.push_str("      </snapshotVersion>\n");
                }
                out.push_str("    </snapshotVersions>\n");
            }
            out.push_str("  </versioning>\n");
        }
        if !self.plugins.is_empty() {
            out.push_str("  <plugins>\n");
            for p in &self.plugins {
                out.push_str("    <plugin>\n");
                element(&mut out, 6, "name", &p.name);
                element(&mut out, 6, "prefix", &p.prefix);
                element(&mut out, 6, "artifactId", &p.artifact_id);
                out.push_str("    </plugin>\n");
            }
            out.push_str("  </plugins>\n");
        }
        out.push_str("</metadata>\n");
        out
    }

    /// Adds a deployed `version` (in deploy order): it becomes `latest`,
    /// and `release` unless it is a snapshot. Whether anything changed.
    pub fn add_version(&mut self, version: &str, now: &str) -> bool {
        if self.versions.iter().any(|v| v == version) {
            return false;
        }
        self.versions.push(version.to_owned());
        self.latest = version.to_owned();
        if !crate::layout::is_snapshot(version) {
            self.release = version.to_owned();
        }
        self.last_updated = now.to_owned();
        true
    }

    /// Records a deployed timestamped snapshot file: its build becomes the
    /// snapshot when it is newer, and it the current file of its
    /// classifier and extension.
    pub fn add_snapshot_file(
        &mut self,
        (timestamp, build): (&str, u32),
        classifier: &str,
        extension: &str,
        value: &str,
        now: &str,
    ) {
        let newer = self
            .snapshot
            .as_ref()
            .is_none_or(|(t, b)| (timestamp, build) >= (t.as_str(), *b));
        if newer {
            self.snapshot = Some((timestamp.to_owned(), build));
        }
        match self
            .snapshot_versions
            .iter_mut()
            .find(|sv| sv.classifier == classifier && sv.extension == extension)
        {
            Some(sv) if newer || sv.value.as_str() < value => {
                sv.value = value.to_owned();
                sv.updated = now.to_owned();
            }
            Some(_) => {}
            None => self.snapshot_versions.push(SnapshotVersion {
                classifier: classifier.to_owned(),
                extension: extension.to_owned(),
                value: value.to_owned(),
                updated: now.to_owned(),
            }),
        }
        self.last_updated = now.to_owned();
    }

    /// Adds or replaces the plugins of `other` (by artifactId). Whether
    /// anything changed.
    pub fn merge_plugins(&mut self, other: &[Plugin]) -> bool {
        let mut changed = false;
        for p in other.iter().filter(|p| !p.artifact_id.is_empty()) {
            match self
                .plugins
                .iter_mut()
                .find(|q| q.artifact_id == p.artifact_id)
            {
                Some(q) if q == p => {}
                Some(q) => {
                    *q = p.clone();
                    changed = true;
                }
                None => {
                    self.plugins.push(p.clone());
                    changed = true;
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `mvn deploy` (maven-deploy-plugin 2.8, Maven 3.8) writes at the
    /// artifact level.
    const ARTIFACT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>org.example</groupId>
  <artifactId>lib</artifactId>
  <versioning>
    <latest>1.1</latest>
    <release>1.1</release>
    <versions>
      <version>1.0</version>
      <version>1.1</version>
    </versions>
    <lastUpdated>20261207101500</lastUpdated>
  </versioning>
</metadata>
"#;

    /// A snapshot version's metadata as Maven 3 writes it.
    const SNAPSHOT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata modelVersion="1.1.0">
  <groupId>org.example</groupId>
  <artifactId>lib</artifactId>
  <version>2.0-SNAPSHOT</version>
  <versioning>
    <snapshot>
      <timestamp>20261207.101500</timestamp>
      <buildNumber>2</buildNumber>
    </snapshot>
    <lastUpdated>20261207101500</lastUpdated>
    <snapshotVersions>
      <snapshotVersion>
        <classifier>sources</classifier>
        <extension>jar</extension>
        <value>2.0-20261207.101500-2</value>
        <updated>20261207101500</updated>
      </snapshotVersion>
      <snapshotVersion>
        <extension>pom</extension>
        <value>2.0-20261207.101500-2</value>
        <updated>20261207101500</updated>
      </snapshotVersion>
    </snapshotVersions>
  </versioning>
</metadata>
"#;

    #[test]
    fn artifact_level_round_trips() {
        let m = parse(ARTIFACT.as_bytes()).unwrap();
        assert_eq!(m.versions, ["1.0", "1.1"]);
        assert_eq!((m.latest.as_str(), m.release.as_str()), ("1.1", "1.1"));
        assert_eq!(m.render(), ARTIFACT);
    }

    #[test]
    fn snapshot_level_round_trips() {
        let m = parse(SNAPSHOT.as_bytes()).unwrap();
        assert_eq!(m.snapshot, Some(("20261207.101500".into(), 2)));
        assert_eq!(m.snapshot_versions.len(), 2);
        assert_eq!(m.snapshot_versions[0].classifier, "sources");
        assert_eq!(m.render(), SNAPSHOT);
    }

    #[test]
    fn group_level_plugins() {
        let xml = r#"<metadata xmlns="http://maven.apache.org/METADATA/1.1.0"><plugins><plugin><name>Hello</name><prefix>hello</prefix><artifactId>hello-maven-plugin</artifactId></plugin></plugins></metadata>"#;
        let m = parse(xml.as_bytes()).unwrap();
        assert_eq!(m.plugins.len(), 1);
        assert_eq!(m.plugins[0].prefix, "hello");
        let mut mine = Metadata::default();
        assert!(mine.merge_plugins(&m.plugins));
        assert!(
            !mine.merge_plugins(&m.plugins),
            "the same again changes nothing"
        );
        assert_eq!(parse(mine.render().as_bytes()).unwrap().plugins, m.plugins);
    }

    #[test]
    fn versions_are_added_in_deploy_order() {
        let mut m = Metadata::default();
        assert!(m.add_version("1.0", "20260101000000"));
        assert!(m.add_version("1.1-SNAPSHOT", "20260102000000"));
        assert!(!m.add_version("1.0", "20260103000000"));
        assert_eq!(m.versions, ["1.0", "1.1-SNAPSHOT"]);
        assert_eq!(
            (m.latest.as_str(), m.release.as_str()),
            ("1.1-SNAPSHOT", "1.0")
        );
        assert_eq!(m.last_updated, "20260102000000");
    }

    #[test]
    fn snapshot_files_keep_the_newest_build() {
        let mut m = Metadata::default();
        m.add_snapshot_file(
            ("20260101.000000", 1),
            "",
            "jar",
            "1.0-20260101.000000-1",
            "t1",
        );
        m.add_snapshot_file(
            ("20260102.000000", 2),
            "",
            "jar",
            "1.0-20260102.000000-2",
            "t2",
        );
        m.add_snapshot_file(
            ("20260102.000000", 2),
            "",
            "pom",
            "1.0-20260102.000000-2",
            "t2",
        );
        // A late file of an older build changes neither.
        m.add_snapshot_file(
            ("20260101.000000", 1),
            "",
            "jar",
            "1.0-20260101.000000-1",
            "t3",
        );
        assert_eq!(m.snapshot, Some(("20260102.000000".into(), 2)));
        assert_eq!(m.snapshot_versions.len(), 2);
        assert_eq!(m.snapshot_versions[0].value, "1.0-20260102.000000-2");
    }

    #[test]
    fn other_documents_are_refused() {
        for bad in [
            &b"<html><body>Not Found</body></html>"[..],
            b"<metadata>",
            b"\xff\xfe",
            b"",
            b"<!DOCTYPE metadata [<!ENTITY a \"aaaa\">]><metadata>&a;</metadata>x",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"<metadata/>").unwrap(), Metadata::default());
    }

    #[test]
    fn text_is_escaped() {
        let m = Metadata {
            group_id: "a&b<c".into(),
            ..Metadata::default()
        };
        assert_eq!(parse(m.render().as_bytes()).unwrap().group_id, "a&b<c");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "(<[a-zA-Z/]{0,12}>|[a-z0-9 .&;-]{0,8}){0,40}") {
            let _ = parse(s.as_bytes());
        }
    }
}
