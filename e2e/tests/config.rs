//! `--config`: README's example file is valid; flags beat the environment, which beats the
//! file; `confab config check` says where each setting came from and masks passwords; a
//! server started with the file serves by it.

use anyhow::{Context, Result, ensure};
use e2e::{confab_binary, free_port, http_get, workspace_root};

/// The TOML block of README's "Configuration file" section.
fn readme_example() -> Result<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md"))?;
    let section = readme.split("### Configuration file").nth(1).context("the section")?;
    let block = section.split("```toml\n").nth(1).context("a toml block")?;
    Ok(block.split("```").next().context("its end")?.to_owned())
}

async fn check(
    config: &std::path::Path,
    env: &[(&str, &str)],
    flags: &[&str],
) -> Result<(bool, String, String)> {
    let mut command = tokio::process::Command::new(confab_binary()?);
    command.arg("--config").arg(config).args(flags).args(["config", "check"]);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await?;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

#[tokio::test]
async fn the_readme_example_is_valid_and_precedence_is_flag_environment_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("confab.toml");
    let example = readme_example()?;
    ensure!(example.contains("listen =") && example.contains("send-rate"), "{example}");
    let example = example
        .replace(
            "# postgres = \"postgres://confab:secret@",
            "postgres = \"postgres://confab:secret@",
        )
        .replace("# redis = ", "redis = ");
    std::fs::write(&path, &example)?;
    let (ok, settings, said) = check(
        &path,
        &[("CONFAB_SEND_RATE", "3"), ("CONFAB_HEARTBEAT_MS", "4000")],
        &["--heartbeat-ms", "7000"],
    )
    .await?;
    ensure!(ok, "{said}");
    ensure!(said.contains("valid"));
    for line in [
        "data = \"/var/lib/confab\"  # file",
        "send-rate = 3  # environment",
        "heartbeat-ms = 7000  # flag",
        "send-burst = 30  # file",
        "trusted-proxy = [\"127.0.0.1/32\"]  # file",
        "postgres = \"postgres://confab:****@db.internal/confab\"  # file",
        "# tls-cert is not set",
    ] {
        ensure!(settings.contains(line), "{line:?} in\n{settings}");
    }
    ensure!(!settings.contains("secret"), "the password is masked");

    // What check prints is itself a valid file giving the same settings.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, settings.replace("****", "secret"))?;
    let (ok, again, said) = check(&printed, &[], &[]).await?;
    ensure!(ok, "{said}");
    let values = |text: &str| -> Vec<String> {
        text.lines().map(|line| line.split("  #").next().unwrap_or_default().to_owned()).collect()
    };
    ensure!(values(&again) == values(&settings), "{again}");
    Ok(())
}

#[tokio::test]
async fn bad_configurations_are_refused_with_the_reason() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("confab.toml");
    for (file, reason) in [
        ("listen = \"not an address\"\n", "not an address"),
        ("sned-rate = 5\n", "unknown option \"sned-rate\""),
        ("redis = \"redis://127.0.0.1/\"\n", "--redis needs --postgres"),
        ("tls-cert = \"/no/cert.pem\"\n", "--tls-cert and --tls-key go together"),
        ("tls-cert = \"/no/cert.pem\"\ntls-key = \"/no/key.pem\"\n", "cannot read /no/cert.pem"),
        ("listen = [\n", "confab.toml"),
    ] {
        std::fs::write(&path, file)?;
        let (ok, _, said) = check(&path, &[], &[]).await?;
        ensure!(!ok && said.contains(reason), "{file:?}: {said}");
    }
    Ok(())
}

#[tokio::test]
async fn a_server_runs_by_its_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let path = dir.path().join("confab.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata = {:?}\nstatic = {:?}\n",
            data.display().to_string(),
            e2e::dist_dir()?.display().to_string()
        ),
    )?;
    let mut child = tokio::process::Command::new(confab_binary()?)
        .env("CONFAB_CONFIG", &path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    e2e::eventually("the server on the file's address", || async {
        Ok(http_get(addr, "/healthz").await.ok().filter(|body| body.contains("ok")))
    })
    .await?;
    ensure!(data.join("confab.db").exists(), "the store is where the file says");
    child.kill().await?;
    Ok(())
}
