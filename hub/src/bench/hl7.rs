//! `bench hl7`: ORU^R01 over MLLP, one message at a time per connection, durable ACKs.

use super::*;

fn hl7_message(control: &str, eui: &str, t: i64) -> Vec<u8> {
    let ts = {
        let secs = t.div_euclid(1000);
        let ms = t.rem_euclid(1000);
        let dt = time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}.{ms:03}+0000",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    };
    let msg = [
        format!("MSH|^~\\&|Gateway^{eui}^EUI-64|Hospital|WARDHUB|ICU|{ts}||ORU^R01^ORU_R01|{control}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"),
        "PV1||I|ICU^^bed^Hospital".to_owned(),
        format!("OBR|1|||182777000^monitoring of patient^SCT|||{ts}"),
        format!("OBX|1||69642^MDC_DEV_ANALY_SAT_O2_MDS^MDC|1.0.0.0|||||||X|||||||{eui}^^{eui}^EUI-64"),
        format!("OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.3.1.150456|97|262688^MDC_DIM_PERCENT^MDC|||||R|||{ts}"),
        format!("OBX|3|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC|1.3.1.149530|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{ts}"),
        format!("OBX|4|NM|151562^MDC_RESP_RATE^MDC|1.3.1.151562|16|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R|||{ts}"),
        format!("OBX|5|NM|147842^MDC_ECG_HEART_RATE^MDC|1.3.1.147842|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{ts}"),
    ]
    .join("\r");
    let mut frame = vec![0x0b];
    frame.extend_from_slice(msg.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    frame
}

pub(super) async fn hl7(a: Hl7Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.connections > 0, "connections must be positive");
    let dir = tempfile::tempdir().context("temporary data directory")?;
    let ids: Vec<String> = (0..a.connections)
        .map(|i| format!("00B0{i:012X}"))
        .collect();
    let hub = bench_hub(dir.path(), &ids, "").await?;
    let addr = hub.addresses.hl7.context("the HL7 adapter is off")?;
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for eui in ids.clone() {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            let t0 = SystemClock.now_ms() - 3_600_000;
            let mut i = 0i64;
            while !stop.is_cancelled() {
                let sent = Instant::now();
                s.write_all(&hl7_message(&format!("M{i}"), &eui, t0 + i))
                    .await?;
                loop {
                    if let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                        let ack = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 2);
                        anyhow::ensure!(ack.contains("MSA|AA|"), "not AA: {ack}");
                        break;
                    }
                    let mut chunk = [0u8; 1024];
                    let n = s.read(&mut chunk).await?;
                    anyhow::ensure!(n > 0, "connection closed");
                    buf.extend_from_slice(&chunk[..n]);
                }
                lat.push(sent.elapsed().as_secs_f64() * 1000.0);
                i += 1;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    tokio::time::sleep(a.duration).await;
    stop.cancel();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    hub.shutdown().await;
    all.sort_by(f64::total_cmp);
    let secs = a.duration.as_secs_f64();
    println!(
        "bench hl7: {} connection(s), {:?}, 4 observations per message, ACK AA after flush",
        a.connections, a.duration
    );
    println!("  messages acked/s     : {:.0}", all.len() as f64 / secs);
    println!(
        "  observations/s       : {:.0}",
        all.len() as f64 * 4.0 / secs
    );
    println!(
        "  ACK latency ms       : p50 {:.1}  p99 {:.1}",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    Ok(())
}
