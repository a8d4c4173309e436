use zbus::wire::LE;

#[test]
fn i8_value() {
    basic_type_test!(LE, 77_i8, 2, i8, 2);
}
