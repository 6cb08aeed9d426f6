//! Metrics: samples of CPU, memory, swap, filesystems, load, network and temperature, queued
//! on the device and sent compactly with the check-in.
//!
//! A sample is a time and one value per name, in the order of a names list the agent sends
//! only when it changed (a filesystem mounted, an interface added) and the backend has not
//! acknowledged it yet, so a sample costs its numbers and little else. On the wire a sample
//! is a JSON array, `[time, v0, v1, ...]`, `null` for a value not measured this time.
//! Samples carry consecutive sequence numbers and are acknowledged like reports.

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a metric measures, and where its instance (if any) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// The name before any `:instance`.
    pub name: &'static str,
    /// Unit shown beside values: `%`, `B`, `B/s`, `°C`, or empty.
    pub unit: &'static str,
    /// What the instance names (`mount point`, `interface`, `thermal zone`), if there is one.
    pub instance: Option<&'static str>,
    /// Said in the dashboard and the docs.
    pub about: &'static str,
}

/// Every metric the agent samples. A series is named `name` or `name:instance`.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "cpu.user",
        unit: "%",
        instance: None,
        about: "CPU time in user space (nice included), of all CPUs",
    },
    MetricDef {
        name: "cpu.system",
        unit: "%",
        instance: None,
        about: "CPU time in the kernel (interrupts included)",
    },
    MetricDef {
        name: "cpu.iowait",
        unit: "%",
        instance: None,
        about: "CPU time idle while waiting for I/O",
    },
    MetricDef {
        name: "memory.used",
        unit: "%",
        instance: None,
        about: "memory in use: total less available",
    },
    MetricDef {
        name: "memory.available",
        unit: "B",
        instance: None,
        about: "memory available to new programs without swapping",
    },
    MetricDef {
        name: "swap.used",
        unit: "%",
        instance: None,
        about: "swap in use (absent without swap)",
    },
    MetricDef {
        name: "load.1",
        unit: "",
        instance: None,
        about: "load average over 1 minute",
    },
    MetricDef {
        name: "load.5",
        unit: "",
        instance: None,
        about: "load average over 5 minutes",
    },
    MetricDef {
        name: "load.15",
        unit: "",
        instance: None,
        about: "load average over 15 minutes",
    },
    MetricDef {
        name: "fs.used",
        unit: "%",
        instance: Some("mount point"),
        about: "space in use on a filesystem, of what unprivileged users may use",
    },
    MetricDef {
        name: "fs.free",
        unit: "B",
        instance: Some("mount point"),
        about: "space free for unprivileged users",
    },
    MetricDef {
        name: "net.rx",
        unit: "B/s",
        instance: Some("interface"),
        about: "bytes received per second",
    },
    MetricDef {
        name: "net.tx",
        unit: "B/s",
        instance: Some("interface"),
        about: "bytes sent per second",
    },
    MetricDef {
        name: "temp",
        unit: "°C",
        instance: Some("thermal zone"),
        about: "temperature of a thermal zone",
    },
];

/// The definition of a series name (`fs.used:/data` is `fs.used`), if it is one.
pub fn definition(series: &str) -> Option<&'static MetricDef> {
    let (name, instance) = match series.split_once(':') {
        Some((name, instance)) => (name, Some(instance)),
        None => (series, None),
    };
    METRICS
        .iter()
        .find(|m| m.name == name && m.instance.is_some() == instance.is_some())
}

/// Longest series name.
pub const MAX_NAME: usize = 160;
/// Series one device may report.
pub const MAX_SERIES: usize = 256;
/// Samples one check-in carries.
pub const MAX_SAMPLES_PER_CHECKIN: usize = 500;

/// One measurement: the device's time (Unix seconds) and a value per name, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub time: u64,
    pub values: Vec<Option<f64>>,
}

/// The metrics part of a check-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsUpload {
    /// The series' names, when the backend has not acknowledged this list yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Sequence number of the first sample; the others follow it one by one.
    pub seq: u64,
    pub samples: Vec<Sample>,
}

impl MetricsUpload {
    /// The backend's checks: known series names, bounded counts, samples as wide as `names`.
    pub fn validate(&self, names: &[String]) -> Result<(), String> {
        if names.len() > MAX_SERIES {
            return Err(format!("more than {MAX_SERIES} series"));
        }
        for n in names {
            if n.len() > MAX_NAME || n.chars().any(char::is_control) || definition(n).is_none() {
                return Err(format!("{n:?} is not a metric series"));
            }
        }
        if self.samples.len() > MAX_SAMPLES_PER_CHECKIN {
            return Err(format!(
                "more than {MAX_SAMPLES_PER_CHECKIN} samples in one check-in"
            ));
        }
        if let Some(s) = self.samples.iter().find(|s| s.values.len() != names.len()) {
            return Err(format!(
                "a sample has {} values for {} series",
                s.values.len(),
                names.len()
            ));
        }
        Ok(())
    }
}

/// Integral values go as integers (`42`, not `42.0`): most bytes and counters are.
fn write_value<S: SerializeSeq>(seq: &mut S, value: Option<f64>) -> Result<(), S::Error> {
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => seq.serialize_element(&(v as i64)),
        Some(v) if v.is_finite() => seq.serialize_element(&v),
        _ => seq.serialize_element(&None::<f64>),
    }
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.values.len() + 1))?;
        seq.serialize_element(&self.time)?;
        for v in &self.values {
            write_value(&mut seq, *v)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SampleVisitor;
        impl<'de> Visitor<'de> for SampleVisitor {
            type Value = Sample;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of a time and values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
                let time = seq
                    .next_element::<u64>()?
                    .ok_or_else(|| de::Error::custom("a sample needs its time"))?;
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<Option<f64>>()? {
                    if values.len() >= MAX_SERIES {
                        return Err(de::Error::custom("a sample has too many values"));
                    }
                    values.push(v);
                }
                Ok(Sample { time, values })
            }
        }
        deserializer.deserialize_seq(SampleVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_compact_arrays() {
        let s = Sample {
            time: 1_700_000_000,
            values: vec![Some(12.5), Some(3.0), None, Some(1e12)],
        };
        let json = serde_json::to_string(&s).expect("serialises");
        assert_eq!(json, "[1700000000,12.5,3,null,1000000000000]");
        let back: Sample = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Sample>("[]").is_err());
        assert!(serde_json::from_str::<Sample>("[1,\"x\"]").is_err());
    }

    #[test]
    fn series_names_come_from_the_catalogue() {
        assert_eq!(definition("cpu.user").map(|m| m.unit), Some("%"));
        assert_eq!(definition("fs.used:/data").map(|m| m.name), Some("fs.used"));
        assert_eq!(
            definition("fs.used:/mnt/a:b").map(|m| m.name),
            Some("fs.used")
        );
        assert!(definition("fs.used").is_none(), "needs its mount point");
        assert!(definition("cpu.user:0").is_none());
        assert!(definition("rm -rf").is_none());
        let upload = MetricsUpload {
            names: None,
            seq: 1,
            samples: vec![Sample {
                time: 1,
                values: vec![Some(1.0)],
            }],
        };
        assert_eq!(upload.validate(&["load.1".into()]), Ok(()));
        assert!(
            upload
                .validate(&["load.1".into(), "load.5".into()])
                .is_err()
        );
        assert!(upload.validate(&["bogus".into()]).is_err());
    }
}
