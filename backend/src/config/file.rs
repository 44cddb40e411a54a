//! `--config confab.toml`: every option in a file, under the option's name without `--`
//! (`listen = "0.0.0.0:8080"`, `trusted-proxy = ["10.0.0.0/8"]`; `_` may stand for `-`).
//!
//! Precedence, highest first: command-line flags, environment variables, the file, the
//! built-in defaults. The file's values become the options' defaults before clap parses,
//! so clap's own order (flag, then environment, then default) gives exactly that, and
//! every value from the file is checked by the same parser as on the command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::Config;

/// Options that are not settings: never read from the file, never printed.
const NOT_SETTINGS: [&str; 3] = ["help", "version", "config"];

/// The configuration, and where each setting came from.
#[derive(Debug)]
pub struct Loaded {
    /// The settings in effect.
    pub config: Config,
    matches: ArgMatches,
    from_file: Vec<String>,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read or is not TOML.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The command line, the environment or a value in the file is wrong.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// Settings that do not go together.
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    /// Exits as clap does for its errors (help and version print and exit 0), or prints
    /// the error and exits 2.
    pub fn exit(self) -> ! {
        match self {
            ConfigError::Clap(error) => error.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(2)
            }
        }
    }
}

/// Parses `args` (the first is the program's name), with the file that `--config` or
/// `CONFAB_CONFIG` names.
pub fn load(args: Vec<OsString>) -> Result<Loaded, ConfigError> {
    let mut command = Config::command();
    let path = config_path(&args);
    let mut from_file = Vec::new();
    if let Some(path) = &path {
        for (key, values) in read(path)? {
            let id = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(key.as_str()))
                .filter(|arg| !NOT_SETTINGS.contains(&arg.get_id().as_str()))
                .map(|arg| arg.get_id().to_string())
                .ok_or_else(|| ConfigError::File {
                    path: path.clone(),
                    message: format!("unknown option {key:?} (see `confab --help`)"),
                })?;
            command = command.mut_arg(&id, |arg| arg.default_values(values));
            from_file.push(id);
        }
    }
    let matches = command.try_get_matches_from(args)?;
    let config = Config::from_arg_matches(&matches)?;
    config.check()?;
    Ok(Loaded { config, matches, from_file })
}

/// `--config PATH`, `--config=PATH`, or `CONFAB_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("CONFAB_CONFIG").filter(|path| !path.is_empty()).map(PathBuf::from)
}

/// The file's settings as command-line values, by option name.
fn read(path: &Path) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let failed = |message: String| ConfigError::File { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|error| failed(error.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| failed(error.to_string()))?;
    let mut settings = Vec::new();
    for (key, value) in table {
        let values = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| {
                    scalar(&item).ok_or_else(|| failed(format!("{key}: a list of plain values")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                vec![scalar(&other).ok_or_else(|| failed(format!("{key}: not a plain value")))?]
            }
        };
        settings.push((key.replace('_', "-"), values));
    }
    Ok(settings)
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Loaded {
    /// Every setting in effect, as a TOML file that would give the same settings, each with
    /// where it came from; passwords in URLs are masked.
    pub fn effective(&self) -> String {
        let mut out = String::new();
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            let Some(long) = arg.get_long() else { continue };
            if NOT_SETTINGS.contains(&id) {
                continue;
            }
            let values: Vec<String> = self
                .matches
                .get_raw(id)
                .into_iter()
                .flatten()
                .map(|value| mask_password(&value.to_string_lossy()))
                .collect();
            let source = match self.matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                Some(ValueSource::DefaultValue) if self.from_file.iter().any(|f| f == id) => "file",
                Some(_) => "default",
                None => "not set",
            };
            let value = match values.as_slice() {
                [] => {
                    out.push_str(&format!("# {long} is not set\n"));
                    continue;
                }
                [one]
                    if arg.get_num_args().is_none_or(|n| n.max_values() <= 1)
                        && !matches!(arg.get_action(), clap::ArgAction::Append) =>
                {
                    toml_value(one)
                }
                many => format!(
                    "[{}]",
                    many.iter().map(|v| toml_value(v)).collect::<Vec<_>>().join(", ")
                ),
            };
            out.push_str(&format!("{long} = {value}  # {source}\n"));
        }
        out
    }
}

/// A value as TOML: numbers as numbers, everything else quoted.
fn toml_value(value: &str) -> String {
    if value.parse::<f64>().is_ok_and(f64::is_finite) && !value.starts_with('+') {
        value.to_owned()
    } else {
        toml::Value::String(value.to_owned()).to_string()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return value.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("confab").chain(list.iter().copied()).map(OsString::from).collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file = file(
            "listen = \"0.0.0.0:9000\"\nsend_rate = 2\ntrusted-proxy = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\nheartbeat-ms = 5000\n",
        );
        let path = file.path().to_str().unwrap();
        let loaded = load(args(&["--config", path, "--heartbeat-ms", "7000"])).unwrap();
        assert_eq!(loaded.config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(loaded.config.send_rate, 2.0);
        assert_eq!(loaded.config.trusted_proxies.len(), 2);
        assert_eq!(loaded.config.heartbeat_ms, 7000, "the flag wins");
        assert_eq!(loaded.config.outbox_frames, super::super::defaults::OUTBOX_FRAMES);
        let effective = loaded.effective();
        assert!(effective.contains("listen = \"0.0.0.0:9000\"  # file"), "{effective}");
        assert!(effective.contains("heartbeat-ms = 7000  # flag"), "{effective}");
        assert!(
            effective.contains("trusted-proxy = [\"10.0.0.0/8\", \"127.0.0.1/32\"]  # file"),
            "{effective}"
        );
        assert!(effective.contains("outbox-frames = 1024  # default"), "{effective}");
        assert!(effective.contains("# postgres is not set"), "{effective}");
    }

    #[test]
    fn the_printed_settings_read_back_as_the_same_configuration() {
        let file = file("postgres = \"postgres://confab:hunter2@db/confab\"\nsend-burst = 12.5\n");
        let loaded = load(args(&["--config", file.path().to_str().unwrap()])).unwrap();
        let effective = loaded.effective();
        assert!(
            effective.contains("postgres = \"postgres://confab:****@db/confab\""),
            "{effective}"
        );
        assert!(!effective.contains("hunter2"));
        let again = self::file(&effective.replace("****", "hunter2"));
        let mut reloaded =
            load(args(&["--config", again.path().to_str().unwrap()])).unwrap().config;
        reloaded.config = loaded.config.config.clone();
        assert_eq!(format!("{reloaded:?}"), format!("{:?}", loaded.config));
    }

    #[test]
    fn bad_files_and_values_are_refused_clearly() {
        let unknown = file("listen = \"127.0.0.1:1\"\nno-such-option = 3\n");
        let error = load(args(&["--config", unknown.path().to_str().unwrap()])).unwrap_err();
        assert!(error.to_string().contains("unknown option \"no-such-option\""), "{error}");
        let broken = file("listen = ");
        let error = load(args(&["--config", broken.path().to_str().unwrap()])).unwrap_err();
        assert!(matches!(error, ConfigError::File { .. }), "{error}");
        let wrong = file("heartbeat-ms = \"soon\"\n");
        let error = load(args(&["--config", wrong.path().to_str().unwrap()])).unwrap_err();
        assert!(error.to_string().contains("soon"), "{error}");
        let nested = file("[server]\nlisten = \"127.0.0.1:1\"\n");
        let error = load(args(&["--config", nested.path().to_str().unwrap()])).unwrap_err();
        assert!(error.to_string().contains("not a plain value"), "{error}");
        let error = load(args(&["--config", "/no/such/confab.toml"])).unwrap_err();
        assert!(error.to_string().contains("/no/such/confab.toml"), "{error}");
        // Settings that do not go together are refused from the file too.
        let redis_alone = file("redis = \"redis://127.0.0.1/\"\n");
        let error = load(args(&["--config", redis_alone.path().to_str().unwrap()])).unwrap_err();
        assert!(error.to_string().contains("--postgres"), "{error}");
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(mask_password("redis://:pw@r:6379/"), "redis://:****@r:6379/");
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_password("0.0.0.0:8080"), "0.0.0.0:8080");
    }
}
