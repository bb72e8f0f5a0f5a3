//! The split of one job among several tasks (processes, array jobs, pods), resolved in one
//! place for every stage: flags first, then Slurm's array variables, then the completion index
//! of a Kubernetes Indexed Job.

use crate::{Error, Result};

/// This task's share of the work: task `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tasks {
    pub count: usize,
    pub index: usize,
}

impl Default for Tasks {
    /// One task: the whole job.
    fn default() -> Tasks {
        Tasks::ONE
    }
}

impl Tasks {
    pub const ONE: Tasks = Tasks { count: 1, index: 0 };

    /// The folder a task of several writes under the shared output folder:
    /// `task-IIIII-of-NNNNN` (zero-padded, so that names sort as numbers do).
    pub fn dir_name(&self) -> String {
        format!("task-{:05}-of-{:05}", self.index, self.count)
    }

    /// Where this task writes: `out` itself when it is the only task, else its own
    /// [`Tasks::dir_name`] folder inside `out`; tasks sharing one `out` never touch each
    /// other's files.
    pub fn root(&self, out: &std::path::Path) -> std::path::PathBuf {
        if self.count == 1 {
            out.to_path_buf()
        } else {
            out.join(self.dir_name())
        }
    }

    /// The task a folder name of [`Tasks::dir_name`]'s form names.
    pub fn from_dir_name(name: &str) -> Option<Tasks> {
        let (i, n) = name.strip_prefix("task-")?.split_once("-of-")?;
        let (index, count) = (i.parse().ok()?, n.parse().ok()?);
        (index < count).then_some(Tasks { count, index })
    }

    /// Whether the unit of work numbered `n` (a segment, a package) is this task's:
    /// `n mod count == index`.
    pub fn owns_unit(&self, n: u64) -> bool {
        (n % self.count as u64) as usize == self.index
    }

    /// Resolves `--num-tasks`/`--task-index` against the environment:
    /// `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` for a Slurm
    /// array, else `JOB_COMPLETION_INDEX` for a Kubernetes Indexed Job.
    pub fn resolve(num: Option<usize>, index: Option<usize>) -> Result<Tasks> {
        Self::resolve_with(num, index, &|name| std::env::var(name).ok())
    }

    /// [`Tasks::resolve`] with the environment given as a lookup (testable).
    pub fn resolve_with(
        num: Option<usize>,
        index: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Tasks> {
        let var = |name: &str| -> Result<Option<usize>> {
            match env(name) {
                Some(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::Usage(format!("{name}={v} is not a number"))),
                _ => Ok(None),
            }
        };
        let count = match num {
            Some(n) => Some(n),
            None => var("SLURM_ARRAY_TASK_COUNT")?,
        };
        let index = match index {
            Some(i) => Some(i),
            None => match var("SLURM_ARRAY_TASK_ID")? {
                Some(id) if count.is_some() => {
                    let min = var("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                    Some(id.checked_sub(min).ok_or_else(|| {
                        Error::Usage(format!(
                            "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                        ))
                    })?)
                }
                _ => var("JOB_COMPLETION_INDEX")?,
            },
        };
        match (count, index) {
            (None, None) => Ok(Tasks::ONE),
            (Some(count), Some(index)) if count > 0 && index < count => Ok(Tasks { count, index }),
            (Some(count), Some(index)) => Err(Error::Usage(format!(
                "task index {index} is not below the task count {count}"
            ))),
            (Some(count), None) => Err(Error::Usage(format!(
                "{count} tasks but no task index: give --task-index (or run as a Slurm array task)"
            ))),
            (None, Some(index)) => Err(Error::Usage(format!(
                "task index {index} but no task count: give --num-tasks"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_then_slurm_then_kubernetes() {
        assert_eq!(
            Tasks::resolve_with(None, None, &env(&[])).unwrap(),
            Tasks::ONE
        );
        let slurm = [
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
        ];
        assert_eq!(
            Tasks::resolve_with(None, None, &env(&slurm)).unwrap(),
            Tasks { count: 4, index: 2 }
        );
        assert_eq!(
            Tasks::resolve_with(Some(3), Some(0), &env(&slurm)).unwrap(),
            Tasks { count: 3, index: 0 }
        );
        let k8s = [("JOB_COMPLETION_INDEX", "1")];
        assert_eq!(
            Tasks::resolve_with(Some(2), None, &env(&k8s)).unwrap(),
            Tasks { count: 2, index: 1 }
        );
    }

    #[test]
    fn inconsistent_splits_are_usage_errors() {
        for (n, i, vars) in [
            (Some(2), Some(2), &[][..]),
            (Some(2), None, &[][..]),
            (None, Some(1), &[][..]),
            (None, None, &[("SLURM_ARRAY_TASK_COUNT", "x")][..]),
        ] {
            let e = Tasks::resolve_with(n, i, &env(vars)).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{e}");
        }
    }
}
