use serde::{Deserialize, Serialize};
#[cfg(feature = "serde_bytes")]
use serde_bytes::ByteBuf;
use std::{collections::HashMap, hint::black_box, vec};

use criterion::{Criterion, criterion_group, criterion_main};

use zbus::{
    Type, Variant,
    wire::{LE, serialized::Context, to_bytes},
};

macro_rules! benchmark {
    ($c:ident, $data:ident, $data_type:ty, $func_prefix:literal) => {
        let ser_function_name = format!("{}_ser", $func_prefix);
        let de_function_name = format!("{}_de", $func_prefix);

        // Let's try with DBus format first
        let ctxt = Context::new(LE, 0);
        let mut group = $c.benchmark_group("dbus");
        group.bench_function(&ser_function_name, |b| {
            b.iter(|| {
                let encoded = to_bytes(black_box(ctxt), black_box(&$data)).unwrap();
                black_box(encoded);
            })
        });

        let encoded = to_bytes(ctxt, &$data).unwrap();
        group.bench_function(&de_function_name, |b| {
            b.iter(|| {
                let (s, _): ($data_type, _) = encoded.deserialize().unwrap();
                black_box(s);
            })
        });
        group.finish();
    };
}

#[cfg(feature = "serde_bytes")]
fn byte_array(c: &mut Criterion) {
    let ay = ByteBuf::from(vec![77u8; 100_000]);

    benchmark!(c, ay, ByteBuf, "byte_array");
}

fn fixed_size_array(c: &mut Criterion) {
    let ay = vec![77u8; 100_000];

    benchmark!(c, ay, Vec<u8>, "fixed_size_array");
}

fn big_array(c: &mut Criterion) {
    let mut asv_dict = HashMap::new();
    let mut ass_dict = HashMap::new();
    let int_array = vec![0u64; 1024 * 10];
    let mut strings = Vec::new();
    let mut string_array: Vec<&str> = Vec::new();
    for idx in 0..1024 * 10 {
        strings.push(format!(
            "{idx}{idx}{idx}{idx}{idx}{idx}{idx}{idx}{idx}{idx}{idx}{idx}"
        ));
    }
    for s in &strings {
        string_array.push(s.as_str());
        ass_dict.insert(s.as_str(), s.as_str());
        asv_dict.insert(s.as_str(), Variant::from(s.as_str()));
    }

    let structure = BigArrayStruct {
        string1: "Testtest",
        int1: 0xFFFFFFFFFFFFFFFFu64,
        field: BigArrayField {
            string2: "TesttestTestest",
            int2: 0xFFFFFFFFFFFFFFFFu64,
        },
        int_array,
        string_array,
    };

    benchmark!(c, structure, BigArrayStruct<'_>, "big_array");

    let data = BigArrayDictStruct {
        array_struct: structure.clone(),
        dict: ass_dict,
    };
    benchmark!(c, data, BigArrayDictStruct<'_>, "big_array_and_ass_dict");

    let data = BigArrayDictVariantStruct {
        array_struct: structure,
        dict: asv_dict,
    };
    benchmark!(
        c,
        data,
        BigArrayDictVariantStruct<'_>,
        "big_array_and_asv_dict"
    );
}

fn signature_parse(c: &mut Criterion) {
    #[derive(Type, PartialEq, Debug)]
    struct LongSignatureStruct {
        f1: BigArrayDictVariantStruct<'static>,
        f2: BigArrayDictVariantStruct<'static>,
        f3: BigArrayDictVariantStruct<'static>,
        f4: BigArrayDictVariantStruct<'static>,
        f5: BigArrayDictVariantStruct<'static>,
        f6: BigArrayDictVariantStruct<'static>,
        f7: BigArrayDictVariantStruct<'static>,
        f8: BigArrayDictVariantStruct<'static>,
        f9: BigArrayDictVariantStruct<'static>,
        f10: BigArrayDictVariantStruct<'static>,
        f11: BigArrayDictVariantStruct<'static>,
        f12: BigArrayDictVariantStruct<'static>,
        f13: BigArrayDictVariantStruct<'static>,
        f14: (u32, String, u64, i32),
    }
    let signature_str = LongSignatureStruct::SIGNATURE.to_string();
    // Ensure we have the maximum signature length allowed by the spec.
    assert_eq!(signature_str.len(), 255);

    c.bench_function("signature_parse", |b| {
        b.iter(|| {
            zbus::Signature::try_from(black_box(signature_str.as_str())).unwrap();
        })
    });
}

/// Benchmark parsing and checking short signatures.
///
/// Short signatures are what message bodies and variants carry, and they are parsed each time a
/// message is received. This is unlike the single, long signature that `signature_parse` parses.
fn signature_parse_short(c: &mut Criterion) {
    const SIGNATURES: [&str; 5] = ["s", "us", "a{sv}", "sa{sv}as", "a{oa{sa{sv}}}"];

    let mut group = c.benchmark_group("signature-short");
    for signature in SIGNATURES {
        // Parsing, which also includes dropping the parsed signature.
        group.bench_function(format!("parse/{signature}"), |b| {
            b.iter(|| zbus::Signature::try_from(black_box(signature)).unwrap())
        });

        // Checking only.
        group.bench_function(format!("validate/{signature}"), |b| {
            b.iter(|| zbus::wire::signature::validate(black_box(signature.as_bytes())).unwrap())
        });
    }
    group.finish();
}

fn object_path_parse(c: &mut Criterion) {
    const PATH: &str = "/a/very/very_very/veeeeeeeeeeeeeery/long/long_long/long/long/\
        _/long_path/to_test_parsing_of/paths/you/see";

    c.bench_function("object_path_parse", |b| {
        b.iter(|| {
            zbus::ObjectPath::try_from(black_box(PATH)).unwrap();
        })
    });
}

#[derive(Deserialize, Serialize, Type, PartialEq, Debug, Clone)]
struct BigArrayField<'f> {
    int2: u64,
    string2: &'f str,
}

#[derive(Deserialize, Serialize, Type, PartialEq, Debug, Clone)]
struct BigArrayStruct<'s> {
    string1: &'s str,
    int1: u64,
    field: BigArrayField<'s>,
    int_array: Vec<u64>,
    string_array: Vec<&'s str>,
}

#[derive(Deserialize, Serialize, Type, PartialEq, Debug)]
struct BigArrayDictStruct<'s> {
    #[serde(borrow)]
    array_struct: BigArrayStruct<'s>,
    dict: HashMap<&'s str, &'s str>,
}

#[derive(Deserialize, Serialize, Type, PartialEq, Debug)]
struct BigArrayDictVariantStruct<'s> {
    #[serde(borrow)]
    array_struct: BigArrayStruct<'s>,
    dict: HashMap<&'s str, Variant<'s>>,
}

#[cfg(feature = "serde_bytes")]
criterion_group!(
    benches,
    big_array,
    byte_array,
    fixed_size_array,
    signature_parse,
    signature_parse_short,
    object_path_parse
);
#[cfg(not(feature = "serde_bytes"))]
criterion_group!(
    benches,
    big_array,
    fixed_size_array,
    signature_parse,
    signature_parse_short,
    object_path_parse
);
criterion_main!(benches);
