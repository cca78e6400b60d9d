//! ward-sim: a simulated ward.
