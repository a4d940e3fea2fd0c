//! weft's wire formats: zero-copy typed views, checksums, and encapsulation by template.
//! No I/O, no allocation on the packet path, no unsafe.
#![forbid(unsafe_code)]
#![no_std]
