#[macro_use]
mod common;

mod array_string_value;
mod array_value;
mod bitflags_value;
mod dbus_maybe_rejection;
mod derive;
mod dict_compare;
mod dict_value;
mod enums;
mod fd_value;
mod heapless_string_value;
mod issue;
mod number;
mod object_path_value;
mod recursion_limits;
mod serde_bytes;
mod serialized_size;
mod signature;
mod str_value;
mod struct_byte_array;
mod struct_ref;
mod struct_value;
mod struct_with_hashmap;
mod unit;
mod unit_fds;
mod value_value;
