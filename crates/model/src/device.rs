//! `--device cpu|cuda[:N]` and `--dtype f32|f16|bf16`, chosen in one place.

use candle_core::{DType, Device};

use crate::{Error, Result};

pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| Error::Usage(format!("--device {s}: expected cuda:N")))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::Usage(format!(
                    "--device {s}: this build has no CUDA support (build with `--features cuda`)"
                )));
            }
            Device::new_cuda(ordinal).map_err(|e| Error::Usage(format!("--device {s}: {e}")))
        }
        other => Err(Error::Usage(format!(
            "--device {other}: expected cpu, cuda or cuda:N"
        ))),
    }
}

pub fn parse_dtype(spec: &str, device: &Device) -> Result<DType> {
    let dtype = match spec {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        other => {
            return Err(Error::Usage(format!(
                "--dtype {other}: expected f32, f16 or bf16"
            )))
        }
    };
    if dtype != DType::F32 && device.is_cpu() {
        return Err(Error::Usage(format!(
            "--dtype {spec} is for GPUs; on the CPU use f32"
        )));
    }
    Ok(dtype)
}
