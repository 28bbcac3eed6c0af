//! The configuration file (`--config FILE`, `CASCADE_CONFIG`): YAML whose keys are the long flag
//! names (`http-listen: 0.0.0.0:8080`), a list where a flag repeats.
//!
//! Each key becomes the default of its flag, so clap's own order gives the precedence: command
//! line, then `CASCADE_*` environment, then the file, then the built-in default. A key that is no
//! flag, or a value the flag would refuse, stops the node with a message naming the key and the
//! file. The flag definitions are the only list of keys and variables: nothing is kept by hand.

use clap::{Arg, ArgAction, Command};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The flag (and key of no file) that names the configuration file.
pub const CONFIG_FLAG: &str = "config";
/// Its environment variable.
pub const CONFIG_ENV: &str = "CASCADE_CONFIG";

/// What is wrong with a configuration file, naming the file and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the config file {file}: {message}")]
    Read { file: String, message: String },
    #[error("config file {file}: {message}")]
    Syntax { file: String, message: String },
    #[error("config file {file}: key `{key}`: {message}")]
    Key {
        file: String,
        key: String,
        message: String,
    },
}

/// The file named by `--config FILE` (or `--config=FILE`) in `args` (without the program name),
/// else by `CASCADE_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let flag = format!("--{CONFIG_FLAG}");
    let prefix = format!("--{CONFIG_FLAG}=");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == flag {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix(&prefix) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Reads the file at `path` and makes each of its keys the default of the flag of that name in
/// `cmd`.
pub fn apply_file(cmd: Command, path: &Path) -> Result<Command, FileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    apply(cmd, &text, &file)
}

/// As [`apply_file`], with the file's text given; `file` names it in errors.
pub fn apply(mut cmd: Command, text: &str, file: &str) -> Result<Command, FileError> {
    let syntax = |message: String| FileError::Syntax {
        file: file.to_owned(),
        message,
    };
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| syntax(e.to_string()))?;
    let map = match doc {
        serde_yaml_ng::Value::Mapping(map) => map,
        // An empty file (or one of comments only) sets nothing.
        serde_yaml_ng::Value::Null => return Ok(cmd),
        _ => return Err(syntax("expected a mapping of flag names to values".into())),
    };
    let mut seen = BTreeSet::new();
    for (key, value) in map {
        let serde_yaml_ng::Value::String(key) = key else {
            return Err(syntax(format!(
                "keys are flag names, found {}",
                describe(&key)
            )));
        };
        let key_error = |message: String| FileError::Key {
            file: file.to_owned(),
            key: key.clone(),
            message,
        };
        let arg = file_arg(&cmd, &key).ok_or_else(|| {
            key_error(format!(
                "no such flag; the keys are the long flag names: {}",
                keys(&cmd).join(", ")
            ))
        })?;
        if !seen.insert(key.clone()) {
            return Err(key_error("given twice".into()));
        }
        let values = values_of(&arg, &value).map_err(key_error)?;
        check(&arg, &values).map_err(key_error)?;
        let id = arg.get_id().clone();
        // A secret (and a Redis URL with its password) shows in `--help` neither from the
        // environment nor from the file.
        let hide = arg.is_hide_env_values_set();
        cmd = cmd.mut_arg(id, |a| a.default_values(values).hide_default_value(hide));
    }
    Ok(cmd)
}

/// The flags a file may set: every long flag but `--config`, `--help` and `--version`.
fn file_args(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        a.get_long()
            .is_some_and(|l| !matches!(l, CONFIG_FLAG | "help" | "version"))
            && !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
    })
}

fn file_arg(cmd: &Command, key: &str) -> Option<Arg> {
    file_args(cmd).find(|a| a.get_long() == Some(key)).cloned()
}

/// The keys a file for `cmd` may hold, sorted.
pub fn keys(cmd: &Command) -> Vec<String> {
    let mut keys: Vec<String> = file_args(cmd)
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

fn describe(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::Null => "nothing".into(),
        serde_yaml_ng::Value::Bool(_) => "a boolean".into(),
        serde_yaml_ng::Value::Number(_) => "a number".into(),
        serde_yaml_ng::Value::String(_) => "a string".into(),
        serde_yaml_ng::Value::Sequence(_) => "a list".into(),
        serde_yaml_ng::Value::Mapping(_) => "a mapping".into(),
        serde_yaml_ng::Value::Tagged(_) => "a tagged value".into(),
    }
}

fn scalar(value: &serde_yaml_ng::Value) -> Result<String, String> {
    match value {
        serde_yaml_ng::Value::String(s) => Ok(s.clone()),
        serde_yaml_ng::Value::Bool(b) => Ok(b.to_string()),
        serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
        serde_yaml_ng::Value::Null => {
            Err("has no value (leave the key out for the default)".into())
        }
        other => Err(format!("expected a value, found {}", describe(other))),
    }
}

/// The value(s) a key gives its flag: one for a flag given once, any number (a list, or a
/// scalar split at the flag's delimiter) for a flag that repeats.
fn values_of(arg: &Arg, value: &serde_yaml_ng::Value) -> Result<Vec<String>, String> {
    let repeats = matches!(arg.get_action(), ArgAction::Append);
    let items = match value {
        serde_yaml_ng::Value::Sequence(items) if repeats => {
            items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
        }
        serde_yaml_ng::Value::Sequence(_) => {
            return Err("takes one value, not a list".into());
        }
        other => vec![scalar(other)?],
    };
    Ok(match arg.get_value_delimiter() {
        Some(d) if repeats => items
            .iter()
            .flat_map(|s| s.split(d).map(str::to_owned))
            .collect(),
        _ => items,
    })
}

/// Parses `values` as the flag itself would on a command line, so a bad value is refused here,
/// naming the key, and not later as if the flag's built-in default were wrong.
fn check(arg: &Arg, values: &[String]) -> Result<(), String> {
    let long = arg.get_long().unwrap_or_default();
    let alone = Command::new("config")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        // The variable must not stand in for the value under test.
        .arg(arg.clone().env(None::<&str>));
    let argv = values
        .iter()
        .flat_map(|v| [OsString::from(format!("--{long}")), OsString::from(v)]);
    alone.try_get_matches_from(argv).map(|_| ()).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_owned()
    })
}

/// Every `CASCADE_*` variable the flags of `cmd` and its subcommands read, sorted.
pub fn env_names(cmd: &Command) -> Vec<String> {
    let mut names = BTreeSet::new();
    collect_env(cmd, &mut names);
    names.into_iter().collect()
}

fn collect_env(cmd: &Command, names: &mut BTreeSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            names.insert(env.to_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        collect_env(sub, names);
    }
}

/// Refuses a `CASCADE_*` variable that no flag of `cmd` (or its subcommands) reads: a typo
/// would otherwise be ignored and the default used.
pub fn check_environment(cmd: &Command) -> Result<(), String> {
    let known = env_names(cmd);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CASCADE_") && !known.iter().any(|k| k == key) {
            return Err(format!(
                "unknown environment variable {key}; known: {}",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// An example file for `cmd`: every key a file may hold with its help as a comment, set to its
/// default, or commented out where the flag has none.
pub fn example(cmd: &Command) -> String {
    let mut out = String::new();
    let mut args: Vec<&Arg> = file_args(cmd).collect();
    args.sort_by_key(|a| a.get_long());
    for arg in args {
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        out.push('\n');
        for line in wrap(&help, 96) {
            out.push('#');
            if !line.is_empty() {
                out.push(' ');
                out.push_str(&line);
            }
            out.push('\n');
        }
        let key = arg.get_long().unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        match defaults.as_slice() {
            [] => {
                let placeholder = arg
                    .get_value_names()
                    .and_then(|n| n.first())
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "VALUE".into());
                out.push_str(&format!("# {key}: <{placeholder}>\n"));
            }
            [one] => out.push_str(&format!("{key}: {}\n", yaml_scalar(one))),
            many => {
                out.push_str(&format!("{key}:\n"));
                for v in many {
                    out.push_str(&format!("  - {}\n", yaml_scalar(v)));
                }
            }
        }
    }
    out
}

fn yaml_scalar(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c))
        && !value.starts_with([':', '-', '/'])
        && !value.ends_with(':');
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// `text`'s paragraphs, each wrapped at `width` columns; blank lines between them kept.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}
