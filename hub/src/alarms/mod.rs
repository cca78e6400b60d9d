//! Alarm engine (IEC 60601-1-8 vocabulary).
