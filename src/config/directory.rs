//! The directory (users, flows, dispatch mappings, prompts) as the file declares it
//! plus what was made through the API, and the rules that join them.
//!
//! File-declared objects are read-only through the API and change with the
//! file (as Grafana provisioning does); API-made objects live in the store.
//! The running directory is the union, and it is validated as ONE
//! configuration: the API's objects are appended to the file's text as
//! `[[users]]`, `[[flows]]` and `[[dispatch_mappings]]` tables and the whole
//! text goes through [`Config::from_toml`], so an API change meets exactly
//! the rules and messages of the TOML (docs/decisions.md, "The directory
//! lives"). The file's own lines keep their numbers in messages.
//!
//! Nothing here touches the disk or the store: the shells bring the texts.

use std::fmt;
use std::path::Path;

use super::error::{ConfigError, Problem};
use super::Config;

/// The three kinds of directory object, named as their TOML arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Users,
    Flows,
    DispatchMappings,
    /// A `[prompts]` entry: `name` and the audio file's `path`.
    Prompts,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Users,
        Kind::Flows,
        Kind::DispatchMappings,
        Kind::Prompts,
    ];
    /// The kinds written as TOML arrays of tables.
    const ARRAYS: [Kind; 3] = [Kind::Users, Kind::Flows, Kind::DispatchMappings];

    /// The TOML array (`[[users]]`), also the store's `kind` column.
    pub fn table(self) -> &'static str {
        match self {
            Kind::Users => "users",
            Kind::Flows => "flows",
            Kind::DispatchMappings => "dispatch_mappings",
            Kind::Prompts => "prompts",
        }
    }

    /// The member that identifies an object of this kind.
    pub fn key_member(self) -> &'static str {
        match self {
            Kind::Users => "id",
            Kind::Flows | Kind::DispatchMappings | Kind::Prompts => "name",
        }
    }

    /// One object, in words ("user", "flow", "dispatch mapping").
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Users => "user",
            Kind::Flows => "flow",
            Kind::DispatchMappings => "dispatch mapping",
            Kind::Prompts => "prompt",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.table() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.table())
    }
}

/// Where an object of the running directory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    File,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::Api => "api",
        }
    }
}

/// One object as declared: its TOML table, keys as in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub kind: Kind,
    /// The value of its key member (`id` or `name`).
    pub key: String,
    pub table: toml::Table,
}

impl Declared {
    /// `table` as an object of `kind`; its key is empty when the key
    /// member is missing or not a string (validation then says so with its
    /// message).
    pub fn new(kind: Kind, table: toml::Table) -> Declared {
        let key = table
            .get(kind.key_member())
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Declared { kind, key, table }
    }
}

impl Declared {
    /// An entity tag of the object's content (RFC 9110 §8.8.3): a client
    /// that sends it back in `If-Match` changes the object only if nobody
    /// changed it in between, so two admins' edits never silently
    /// overwrite each other.
    pub fn etag(&self) -> String {
        use sha2::{Digest, Sha256};
        let body = serde_json::to_string(&self.table).unwrap_or_default();
        let hash = Sha256::digest(body.as_bytes());
        let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }
}

/// The directory objects a configuration text declares, in file order.
/// A text that is not TOML declares none (its validation says why).
pub fn declared_in(text: &str) -> Vec<Declared> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for kind in Kind::ARRAYS {
        if let Some(toml::Value::Array(items)) = doc.get(kind.table()) {
            for item in items {
                if let toml::Value::Table(t) = item {
                    out.push(Declared::new(kind, t.clone()));
                }
            }
        }
    }
    if let Some(toml::Value::Table(prompts)) = doc.get(Kind::Prompts.table()) {
        for (name, path) in prompts {
            out.push(prompt(name, path.clone()));
        }
    }
    out
}

/// A `[prompts]` entry as an object: `{name, path}`.
pub fn prompt(name: &str, path: toml::Value) -> Declared {
    let mut t = toml::Table::new();
    t.insert("name".into(), toml::Value::String(name.into()));
    t.insert("path".into(), path);
    Declared::new(Kind::Prompts, t)
}

/// The file's text followed by the API's objects as TOML tables: what the
/// running directory is validated as, and what `tpswitch export` prints.
pub fn compose(file_text: &str, api: &[Declared]) -> String {
    let mut text = file_text.to_owned();
    if api.is_empty() {
        return text;
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("\n# Made through the API (the store), appended by tpswitch.\n");
    for kind in Kind::ARRAYS {
        let items: Vec<toml::Value> = api
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| toml::Value::Table(d.table.clone()))
            .collect();
        if items.is_empty() {
            continue;
        }
        let mut doc = toml::Table::new();
        doc.insert(kind.table().into(), toml::Value::Array(items));
        // A table of strings, numbers, booleans and arrays always
        // serialises; an empty string would only drop these objects,
        // which validation of the result then reports as missing.
        text.push('\n');
        text.push_str(&toml::to_string(&doc).unwrap_or_default());
    }
    let prompts: Vec<&Declared> = api.iter().filter(|d| d.kind == Kind::Prompts).collect();
    if prompts.is_empty() {
        return text;
    }
    // `[prompts]` is one table, which TOML lets a file define only once:
    // the API's entries join the file's, and the whole text is written
    // again (its comments and line numbers are then lost; a text that does
    // not parse is left as it is, for validation to report).
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return text;
    };
    let table = doc
        .entry(Kind::Prompts.table())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = table {
        for d in prompts {
            if let Some(path) = d.table.get("path") {
                t.insert(d.key.clone(), path.clone());
            }
        }
    }
    toml::to_string(&doc).unwrap_or(text)
}

/// An id or name both the file and the store declare: neither may win
/// silently, so the start-up or reload stops naming both places.
pub fn conflicts(file: &[Declared], api: &[Declared], file_name: &str, store: &str) -> Vec<String> {
    let mut out = Vec::new();
    for a in api {
        if file.iter().any(|f| f.kind == a.kind && f.key == a.key) {
            out.push(format!(
                "{file_name}: {}: the {} {:?} is declared in the file and was also made through the API (store {store}); \
                 remove it from the file, or delete it through the API (DELETE /api/v1/{}/...) before declaring it in the file",
                a.kind,
                a.kind.noun(),
                a.key,
                a.kind.table().replace('_', "-"),
            ));
        }
    }
    out
}

/// The running configuration: the file's text with the API's objects,
/// validated whole. `path` is the file's (messages, relative paths).
pub fn build(file_text: &str, path: &Path, api: &[Declared]) -> Result<Config, ConfigError> {
    Config::from_toml(&compose(file_text, api), path)
}

/// The union's problems as lines naming the file, each that concerns an
/// object made through the API saying so: its TOML index is past the file's
/// objects, so the path alone would name nothing the operator can find.
pub fn explain(err: &ConfigError, file: &[Declared], api: &[Declared]) -> Vec<String> {
    let ConfigError::Invalid {
        file: name,
        problems,
    } = err
    else {
        return err.to_string().lines().map(str::to_owned).collect();
    };
    problems
        .iter()
        .map(|p| {
            let made = Kind::ARRAYS.into_iter().find_map(|kind| {
                let in_file = file.iter().filter(|d| d.kind == kind).count();
                let rest = p.path.strip_prefix(kind.table())?.strip_prefix('[')?;
                let i: usize = rest.get(..rest.find(']')?)?.parse().ok()?;
                let j = i.checked_sub(in_file)?;
                api.iter().filter(|d| d.kind == kind).nth(j)
            });
            match made {
                Some(d) => format!(
                    "{name}: {p} (the {} {:?}, made through the API)",
                    d.kind.noun(),
                    d.key
                ),
                None => format!("{name}: {p}"),
            }
        })
        .collect()
}

/// Where a validation problem points, for an API answer: inside the object
/// at `index` of `kind` (the member's path within it, as in the JSON body),
/// or elsewhere (the TOML path, such as `dispatch_mappings[0].flow`).
pub fn member_of(problem: &Problem, kind: Kind, index: usize) -> Option<String> {
    if kind == Kind::Prompts {
        // `[prompts]` is not an array: its problems say `prompts.NAME`.
        return None;
    }
    let prefix = format!("{}[{index}]", kind.table());
    let rest = problem.path.strip_prefix(&prefix)?;
    if rest.is_empty() {
        return Some(String::new());
    }
    rest.strip_prefix('.').map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = include_str!("../../config/tpswitch.toml");

    fn path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tpswitch.toml")
    }

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn user(id: &str, number: &str) -> Declared {
        Declared::new(
            Kind::Users,
            table(&format!(
                "id = \"{id}\"\nname = \"New Agent\"\nskills = [\"billing\"]\n\
                 [[extensions]]\ntype = \"pstn\"\nvalue = \"{number}\"\n"
            )),
        )
    }

    fn mapping(name: &str, number: &str, flow: &str) -> Declared {
        Declared::new(
            Kind::DispatchMappings,
            table(&format!(
                "name = \"{name}\"\ninteraction_type = \"voice\"\nmapping = \"contact-point\"\n\
                 phone_number = \"{number}\"\nflow = \"{flow}\"\n"
            )),
        )
    }

    /// The union is the file's objects then the API's, validated as one
    /// file: the new user and mapping are in the running configuration.
    #[test]
    fn the_running_directory_is_the_file_and_the_store() {
        let api = [
            user("newbie", "+1 234 567 0042"),
            mapping("Second login", "+1-555-010-0099", "Timed Presence"),
        ];
        let cfg = build(FILE, &path(), &api).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.users.len(), 4);
        assert!(cfg.user("newbie").is_some());
        assert!(cfg.user("jsmith").is_some());
        let n = crate::config::E164::parse("+15550100099", &crate::config::CountryCode::nanp())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cfg.mapping_for(&n).map(|m| m.flow.as_str()),
            Some("Timed Presence")
        );
        // What export prints declares the same objects.
        let all = declared_in(&compose(FILE, &api));
        let mut expected = declared_in(FILE);
        expected.extend(api.iter().cloned());
        let key = |d: &Declared| (d.kind, d.key.clone());
        let mut a: Vec<_> = all.iter().map(|d| (key(d), d.table.clone())).collect();
        let mut b: Vec<_> = expected.iter().map(|d| (key(d), d.table.clone())).collect();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(a, b);
    }

    /// An API object breaks a TOML rule: the same message as the file,
    /// pointed at the member of the new object.
    #[test]
    fn an_api_object_meets_the_files_rules_and_messages() {
        let api = [user("jdoe", "+1-234-567-8910")];
        let Err(e) = build(FILE, &path(), &api) else {
            panic!("a second user on jsmith's number without ext was accepted");
        };
        let on_new: Vec<_> = e
            .problems()
            .iter()
            .filter_map(|p| member_of(p, Kind::Users, 3).map(|m| (m, p.problem.clone())))
            .collect();
        assert!(
            on_new.iter().any(|(m, _)| m.starts_with("extensions[0]")),
            "{e}"
        );
        let api = [mapping("Nowhere", "+1-555-010-0098", "No such flow")];
        let Err(e) = build(FILE, &path(), &api) else {
            panic!("a mapping to no flow was accepted");
        };
        let p = &e.problems()[0];
        assert_eq!(
            member_of(p, Kind::DispatchMappings, 2).as_deref(),
            Some("flow")
        );
        assert_eq!(p.problem, "\"No such flow\" is not the name of any flow");
    }

    /// An id the file declares and the store holds is named with both
    /// places; other objects pass.
    #[test]
    fn a_key_in_both_the_file_and_the_store_is_a_conflict() {
        let file = declared_in(FILE);
        let api = [
            user("jsmith", "+1 234 567 0042"),
            user("newbie", "+1 234 567 0043"),
        ];
        let c = conflicts(&file, &api, "tpswitch.toml", "/var/lib/tp.db");
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].contains("\"jsmith\""), "{}", c[0]);
        assert!(c[0].contains("tpswitch.toml") && c[0].contains("/var/lib/tp.db"));
        assert!(conflicts(&file, &api[1..], "f", "s").is_empty());
    }

    /// An uploaded prompt joins the file's `[prompts]` (one table in TOML)
    /// and a flow may name it; the file's prompts are declared objects too.
    #[test]
    fn an_api_prompt_joins_the_files_prompt_table() {
        let file = declared_in(FILE);
        assert!(file
            .iter()
            .any(|d| d.kind == Kind::Prompts && d.key == "welcome"));
        let wav = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/welcome.wav");
        let api = [
            prompt("greeting2", toml::Value::String(wav.display().to_string())),
            mapping("Second login", "+1-555-010-0099", "Timed Presence"),
        ];
        let cfg = build(FILE, &path(), &api).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.prompt_path("greeting2"), Some(wav.as_path()));
        assert!(cfg.prompt_path("welcome").is_some());
        assert_eq!(cfg.dispatch_mappings.len(), 3);
        let again = declared_in(&compose(FILE, &api));
        assert!(again
            .iter()
            .any(|d| d.kind == Kind::Prompts && d.key == "greeting2"));
    }

    /// A reload's file that now takes an API mapping's number: the line
    /// names the API's mapping, whose index the file does not have.
    #[test]
    fn a_problem_of_an_api_object_says_so() {
        let api = [mapping("Second login", "+1-555-010-0001", "Timed Presence")];
        let Err(e) = build(FILE, &path(), &api) else {
            panic!("a number used twice was accepted");
        };
        let lines = explain(&e, &declared_in(FILE), &api);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("dispatch_mappings[2].phone_number")
                && lines[0]
                    .contains("(the dispatch mapping \"Second login\", made through the API)"),
            "{}",
            lines[0]
        );
    }

    /// A file that does not end in a newline still takes the API's tables.
    #[test]
    fn compose_after_a_file_without_a_final_newline() {
        let text = FILE.trim_end();
        let cfg = build(text, &path(), &[user("newbie", "+1 234 567 0042")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(cfg.user("newbie").is_some());
    }
}
