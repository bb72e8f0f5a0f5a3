//! `--device cpu|cuda[:N]` and `--dtype f32|f16|bf16`, chosen in one place.

use candle_core::{DType, Device};

use crate::{Error, Result};

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// A CUDA device by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<DeviceSpec, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                Some(Err(_)) => Err(format!("--device {s}: expected cuda:N")),
                None => Err(format!("--device {s}: expected cpu, cuda or cuda:N")),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl DeviceSpec {
    /// Opens the device; a CUDA device needs a build with the `cuda` feature.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(Error::Usage(format!(
                        "--device {self}: this build has no CUDA support (build with `--features cuda`)"
                    )));
                }
                Device::new_cuda(n).map_err(|e| Error::Usage(format!("--device {self}: {e}")))
            }
        }
    }
}

pytorrent_io::word_enum! {
    "--dtype";
    /// The number format of weights and activations.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Precision {
        #[default]
        F32 = "f32",
        F16 = "f16",
        Bf16 = "bf16",
    }
}

impl Precision {
    /// The candle dtype on `device`: half precision is for GPUs.
    pub fn dtype(self, device: &Device) -> Result<DType> {
        let dtype = match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        };
        if dtype != DType::F32 && device.is_cpu() {
            return Err(Error::Usage(format!(
                "--dtype {} is for GPUs; on the CPU use f32",
                self.name()
            )));
        }
        Ok(dtype)
    }
}

/// `--device` as a string (for callers that take it from text).
pub fn parse_device(spec: &str) -> Result<Device> {
    spec.parse::<DeviceSpec>().map_err(Error::Usage)?.open()
}

/// `--dtype` as a string, checked against the device.
pub fn parse_dtype(spec: &str, device: &Device) -> Result<DType> {
    spec.parse::<Precision>()
        .map_err(Error::Usage)?
        .dtype(device)
}
