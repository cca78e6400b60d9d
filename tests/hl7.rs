//! HL7 v2 over MLLP for the tests: an IHE PCD-01 ORU^R01 and a minimal MLLP client.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An ORU^R01 in IHE PCD-01 shape from the device with EUI-64 `eui`, two numerics at `t`.
pub fn oru(control_id: &str, eui: &str, bed: &str, t: i64, spo2: f64, pr: f64) -> String {
    let ts = hl7_time(t);
    [
        format!("MSH|^~\\&|Gateway^{eui}^EUI-64|Hospital|WARDHUB|ICU|{ts}||ORU^R01^ORU_R01|{control_id}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"),
        "PID|||HOSP123456^^^Hospital^MR||Doe^Jane".to_owned(),
        format!("PV1||I|ICU^^{bed}^Hospital"),
        format!("OBR|1|||182777000^monitoring of patient^SCT|||{ts}"),
        format!("OBX|1||69642^MDC_DEV_ANALY_SAT_O2_MDS^MDC|1.0.0.0|||||||X|||||||{eui}^^{eui}^EUI-64"),
        format!("OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|{spo2}|262688^MDC_DIM_PERCENT^MDC|90-100||||R|||{ts}"),
        format!("OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|{pr}|264864^MDC_DIM_BEAT_PER_MIN^MDC|50-120||||R|||{ts}"),
    ]
    .join("\r")
}

/// HL7 DTM with milliseconds, UTC (the adapter's own formatter: the same text the hub's ACKs
/// carry).
pub fn hl7_time(ms: i64) -> String {
    wardhub_adapters::hl7::message::format_hl7_time(ms)
}

/// A minimal MLLP client: one message, one ACK.
pub struct Mllp {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Mllp {
    pub async fn connect(addr: SocketAddr) -> Mllp {
        Mllp {
            stream: TcpStream::connect(addr).await.expect("MLLP connect"),
            buf: Vec::new(),
        }
    }

    /// Sends one framed message and returns the ACK's MSA-1 (AA, AE, AR) and the whole ACK.
    pub async fn send(&mut self, msg: &str) -> Option<(String, String)> {
        let mut frame = vec![0x0b];
        frame.extend_from_slice(msg.as_bytes());
        frame.extend_from_slice(&[0x1c, 0x0d]);
        self.stream.write_all(&frame).await.ok()?;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                let start = self
                    .buf
                    .iter()
                    .position(|&b| b == 0x0b)
                    .map_or(0, |s| s + 1);
                let ack = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
                self.buf.drain(..end + 2);
                let code = ack
                    .split('\r')
                    .find(|s| s.starts_with("MSA|"))
                    .and_then(|s| s.split('|').nth(1))
                    .unwrap_or("")
                    .to_owned();
                return Some((code, ack));
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk)).await
            {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }
}

/// Sends MLLP-framed `msgs` with `mllp_send` (PyPI `hl7`, a peer no one here wrote); returns
/// its standard output (one ACK per message).
pub async fn mllp_send(addr: SocketAddr, msgs: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msgs.hl7");
    // mllp_send's file input is MLLP-framed messages.
    let mut bytes = Vec::new();
    for m in msgs {
        bytes.push(0x0b);
        bytes.extend_from_slice(m.as_bytes());
        bytes.extend_from_slice(&[0x1c, 0x0d]);
    }
    std::fs::write(&file, bytes).unwrap();
    let out = tokio::process::Command::new("mllp_send")
        .arg("--file")
        .arg(&file)
        .args(["--port", &addr.port().to_string(), &addr.ip().to_string()])
        .output()
        .await
        .expect("mllp_send must be installed (pip install hl7; tests/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
