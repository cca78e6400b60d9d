//! The read API the pipeline and the HTTP API use: observations, latest values and rollups
//! by device or by bed.

use wardhub_model::{Metric, Observation};

use super::*;

impl SledStore {
    pub fn device_observations(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>> {
        let mut sids = self.series_of_device(device, metric);
        self.order_series(&mut sids, |d| {
            (
                String::new(),
                d.metric.code,
                d.channel.clone(),
                d.bed.clone(),
            )
        });
        Ok(page(self.observations(&sids, range, limit)?, limit))
    }

    /// Every device with stored series, sorted.
    pub fn devices(&self) -> Vec<String> {
        let mut v: Vec<String> = self.mem().by_device.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn device_latest(&self, device: &str) -> Result<Vec<Observation>> {
        let m = self.mem();
        let mut best = query::Latest::default();
        for sid in m.sids_of_device(device) {
            best.offer(&m, sid, false);
        }
        let mut out = best.into_observations();
        out.sort_by_key(|o| o.metric.code);
        Ok(out)
    }

    pub fn bed_latest(&self, bed: &str) -> Result<Vec<Observation>> {
        let m = self.mem();
        let mut best = query::Latest::default();
        for sid in m.sids_of_bed(bed) {
            best.offer(&m, sid, true);
        }
        let mut out = best.into_observations();
        out.sort_by(|a, b| {
            (a.device_id.as_str(), a.metric.code).cmp(&(b.device_id.as_str(), b.metric.code))
        });
        Ok(out)
    }

    pub fn bed_observations(
        &self,
        bed: &str,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Observation>> {
        let mut sids = self.mem().sids_of_bed(bed);
        self.order_series(&mut sids, |d| {
            (
                d.device.as_str().to_owned(),
                d.metric.code,
                d.channel.clone(),
                None,
            )
        });
        Ok(page(self.observations(&sids, range, limit)?, limit))
    }

    pub fn device_rollups(
        &self,
        device: &str,
        metric: Option<Metric>,
        range: TimeRange,
        limit: usize,
    ) -> Result<Page<Rollup>> {
        let sids = self.series_of_device(device, metric);
        let mut out = self.rollups(&sids, range, limit)?;
        out.sort_by(|a, b| {
            (a.minute, a.metric.code, &a.channel).cmp(&(b.minute, b.metric.code, &b.channel))
        });
        // A device moved between beds within a minute has a rollup for each: one minute of
        // one channel is one rollup on the device's view.
        out.dedup_by(|b, a| {
            let same =
                a.minute == b.minute && a.metric.code == b.metric.code && a.channel == b.channel;
            if same {
                query::merge_rollup(a, b);
            }
            same
        });
        Ok(page(out, limit))
    }

    pub fn bed_rollups(&self, bed: &str, range: TimeRange, limit: usize) -> Result<Page<Rollup>> {
        let sids = self.mem().sids_of_bed(bed);
        let mut out = self.rollups(&sids, range, limit)?;
        out.sort_by(|a, b| {
            (a.minute, a.device_id.as_str(), a.metric.code, &a.channel).cmp(&(
                b.minute,
                b.device_id.as_str(),
                b.metric.code,
                &b.channel,
            ))
        });
        Ok(page(out, limit))
    }

    /// Whether any observation of this device was ever stored (and not retired by retention).
    pub fn has_device(&self, device: &str) -> Result<bool> {
        Ok(!self.mem().sids_of_device(device).is_empty())
    }
}
