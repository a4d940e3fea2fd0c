//! IPAM by delegation: exec `$CNI_PATH/<ipam.type>` with our environment (the command
//! overridden) and the same configuration on stdin; its stdout is its result or its error.
//! Executing the plugin binary is the delegation the CNI spec defines (libcni's
//! `DelegateAdd` does the same); an IPAM plugin has no library interface to call instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{CniError, IPAM_FAILURE};
use crate::result::CniResult;

/// Finds `plugin` in the `CNI_PATH` directories.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    path.iter().map(|d| d.join(plugin)).find(|p| p.is_file()).ok_or_else(|| {
        let dirs: Vec<String> = path.iter().map(|d| d.display().to_string()).collect();
        CniError::short(
            IPAM_FAILURE,
            format!("IPAM plugin {plugin:?} not found in CNI_PATH [{}]", dirs.join(":")),
        )
    })
}

/// Runs `plugin` for `command` (`ADD`, `DEL`, `CHECK`) with `stdin`; returns its stdout.
/// A failing plugin's error JSON is passed on with its code, the message naming the plugin.
pub fn exec(plugin: &Path, command: &str, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut child = Command::new(plugin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            CniError::new(IPAM_FAILURE, format!("cannot run IPAM plugin {}", plugin.display()), e.to_string())
        })?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits without reading gives EPIPE here; its exit status tells why.
        let _ = input.write_all(stdin);
    }
    let out = child.wait_with_output().map_err(|e| {
        CniError::new(IPAM_FAILURE, format!("IPAM plugin {name}: waiting for it"), e.to_string())
    })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let reported: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    let field = |k: &str| reported.as_ref().and_then(|v| v.get(k)).cloned();
    let code = field("code").and_then(|c| c.as_u64()).map_or(IPAM_FAILURE, |c| c as u32);
    let msg = field("msg").and_then(|m| m.as_str().map(str::to_owned));
    let details = field("details").and_then(|m| m.as_str().map(str::to_owned)).unwrap_or_default();
    Err(match msg {
        Some(msg) => CniError::new(code, format!("IPAM plugin {name} {command}: {msg}"), details),
        None => CniError::new(
            IPAM_FAILURE,
            format!("IPAM plugin {name} {command} failed ({})", out.status),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
    })
}

/// ADD through `plugin`: the address the pod gets.
pub fn add(plugin: &Path, stdin: &[u8]) -> Result<CniResult, CniError> {
    let out = exec(plugin, "ADD", stdin)?;
    let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    CniResult::from_ipam(&name, &out)
}
