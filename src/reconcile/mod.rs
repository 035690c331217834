//! The pure core: correlate records into people, classify each person,
//! plan the fixes. No I/O, no clock: time comes in as an argument.
