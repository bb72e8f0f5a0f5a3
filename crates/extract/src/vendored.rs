//! Vendored third-party code inside a package: copies of other projects that a package
//! ships (a virtualenv, `site-packages`, `node_modules`, a `_vendor` folder). Their records
//! would carry the shipping package's licence and repeat popular libraries thousands of
//! times, so they are left out by default (`--keep-vendored` keeps them), counted by rule.
//!
//! The rules, on a member's path inside the package (after an sdist's `name-version/`):
//!
//! - `virtualenv`: under a folder that holds a `pyvenv.cfg` (the marker of every venv and
//!   virtualenv since Python 3.3), whatever is inside it (`lib/pythonX.Y/`, `Lib/`, scripts);
//! - `site-packages`: under a `site-packages/` or `dist-packages/` folder anywhere but the
//!   package's own install root at its top (`site-packages/`, `lib/pythonX.Y/site-packages/`,
//!   `Lib/site-packages/`: where a conda package keeps its code; the rules apply below it);
//! - `node_modules`: under a `node_modules/` folder anywhere (npm's, with its Python tools);
//! - `vendor`: under a folder named `_vendor`, `vendor`, `vendored`, `third_party` or
//!   `extern` that is not the package's own top folder: `pip/_vendor/requests/…` is vendored,
//!   but a project whose own package is `vendor/` (`vendor/__init__.py`, or
//!   `src/vendor/__init__.py`) is not, nor is a module file named `vendor.py`.
//!
//! Where the path names the vendored project (`site-packages/<name>/`, `_vendor/<name>/`),
//! that name is reported, so the summary says whose code was left out.

/// Why a path is vendored, and the vendored project's name when the path gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendored {
    pub rule: &'static str,
    pub project: Option<String>,
}

const VENDOR_FOLDERS: &[&str] = &["_vendor", "vendor", "vendored", "third_party", "extern"];

/// The folders holding a `pyvenv.cfg`, from the package's member paths (`""` for the
/// package root itself).
pub fn venv_roots<'a>(paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    paths
        .into_iter()
        .filter_map(|p| {
            if p == "pyvenv.cfg" {
                Some(String::new())
            } else {
                p.strip_suffix("/pyvenv.cfg").map(|d| format!("{d}/"))
            }
        })
        .collect()
}

/// The project a vendored path names: the component after the marker folder, as an import
/// name (`six.py` → `six`), when there is one below it.
fn project_after(parts: &[&str], at: usize) -> Option<String> {
    let name = *parts.get(at + 1)?;
    let is_file = at + 2 == parts.len();
    if is_file && !name.ends_with(".py") {
        return None;
    }
    let name = name.strip_suffix(".py").unwrap_or(name);
    (!name.is_empty()).then(|| name.to_string())
}

/// How many leading parts of `parts` are an installed tree's root: `site-packages/`,
/// `lib/pythonX.Y/site-packages/` or `Lib/site-packages/` at the top of the package, where a
/// conda package (and any installed tree) keeps its own code.
fn install_root(parts: &[&str]) -> usize {
    match parts {
        ["site-packages" | "dist-packages", _, ..] => 1,
        ["Lib", "site-packages", _, ..] => 2,
        ["lib", py, "site-packages" | "dist-packages", _, ..] if py.starts_with("python") => 3,
        _ => 0,
    }
}

/// Whether the member at `path` is vendored, given the package's virtualenv roots.
pub fn vendored(path: &str, venvs: &[String]) -> Option<Vendored> {
    let all: Vec<&str> = path.split('/').collect();
    // A conda package's own code sits under its install root; the rules apply below it.
    let parts = &all[install_root(&all)..];
    // Folders only: the last part is the file.
    let folders = &parts[..parts.len().saturating_sub(1)];
    if let Some(_root) = venvs.iter().find(|r| path.starts_with(r.as_str())) {
        let project = folders
            .iter()
            .position(|f| matches!(*f, "site-packages" | "dist-packages"))
            .and_then(|at| project_after(parts, at));
        return Some(Vendored {
            rule: "virtualenv",
            project,
        });
    }
    if let Some(at) = folders
        .iter()
        .position(|f| matches!(*f, "site-packages" | "dist-packages"))
    {
        return Some(Vendored {
            rule: "site-packages",
            project: project_after(parts, at),
        });
    }
    if let Some(at) = folders.iter().position(|f| *f == "node_modules") {
        return Some(Vendored {
            rule: "node_modules",
            project: project_after(parts, at),
        });
    }
    // The package's own top folder (or `src/` and its top folder) may bear any name.
    let own = if folders.first() == Some(&"src") {
        2
    } else {
        1
    };
    if let Some(at) = folders
        .iter()
        .enumerate()
        .skip(own)
        .find(|(_, f)| VENDOR_FOLDERS.contains(f))
        .map(|(at, _)| at)
    {
        return Some(Vendored {
            rule: "vendor",
            project: project_after(parts, at),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, venvs: &[&str]) -> Option<(&'static str, Option<String>)> {
        let venvs: Vec<String> = venvs.iter().map(|s| s.to_string()).collect();
        vendored(path, &venvs).map(|v| (v.rule, v.project))
    }

    #[test]
    fn vendored_trees_are_found_by_rule_with_the_project_they_carry() {
        type Case<'a> = (&'a str, &'a [&'a str], Option<(&'a str, Option<&'a str>)>);
        let cases: &[Case] = &[
            (
                "examples/demo/env/Lib/site-packages/pandas/core/frame.py",
                &["examples/demo/env/"],
                Some(("virtualenv", Some("pandas"))),
            ),
            (
                "examples/demo/env/Scripts/activate_this.py",
                &["examples/demo/env/"],
                Some(("virtualenv", None)),
            ),
            (
                "venv/lib/python3.11/site-packages/IPython/core/magic.py",
                &[],
                Some(("site-packages", Some("IPython"))),
            ),
            (
                "build/lib/dist-packages/six.py",
                &[],
                Some(("site-packages", Some("six"))),
            ),
            (
                "web/node_modules/node-gyp/gyp/pylib/gyp/input.py",
                &[],
                Some(("node_modules", Some("node-gyp"))),
            ),
            (
                "pip/_vendor/requests/api.py",
                &[],
                Some(("vendor", Some("requests"))),
            ),
            (
                "src/mypkg/third_party/tqdm/std.py",
                &[],
                Some(("vendor", Some("tqdm"))),
            ),
            (
                "astropy/extern/configobj/validate.py",
                &[],
                Some(("vendor", Some("configobj"))),
            ),
            // A project whose own package is named like a vendor folder is its own code.
            ("vendor/__init__.py", &[], None),
            ("vendor/tools/cli.py", &[], None),
            ("src/vendor/core.py", &[], None),
            ("extern/api.py", &[], None),
            // A module named vendor.py is not a folder.
            ("mypkg/vendor.py", &[], None),
            ("mypkg/core.py", &[], None),
            // A pyvenv.cfg elsewhere does not make this folder a venv.
            ("mypkg/core.py", &["examples/env/"], None),
            // A conda package's own code under its install root; vendored code below it is
            // still vendored.
            (
                "lib/python3.11/site-packages/greeter/__init__.py",
                &[],
                None,
            ),
            ("site-packages/greeter/core.py", &[], None),
            ("Lib/site-packages/greeter/core.py", &[], None),
            (
                "lib/python3.11/site-packages/pip/_vendor/six.py",
                &[],
                Some(("vendor", Some("six"))),
            ),
        ];
        for (path, venvs, want) in cases {
            let want = want.map(|(r, p)| (r, p.map(str::to_string)));
            assert_eq!(rule(path, venvs), want, "{path}");
        }
    }

    #[test]
    fn venv_roots_are_the_folders_of_pyvenv_cfg() {
        assert_eq!(
            venv_roots(["a/env/pyvenv.cfg", "b.py", "pyvenv.cfg"]),
            vec!["a/env/".to_string(), String::new()]
        );
    }
}
