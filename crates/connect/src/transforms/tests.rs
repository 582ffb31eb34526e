use super::*;
use crate::data::{Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};
use crate::record::{ConnectRecord, Header};

const T: &str = "org.apache.kafka.connect.transforms.";

fn props(pairs: &[(&str, &str)]) -> Props {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn make(class: &str, pairs: &[(&str, &str)]) -> Box<dyn Transformation> {
    transformation_for_class(&format!("{T}{class}"), &props(pairs)).unwrap()
}

fn err(class: &str, pairs: &[(&str, &str)]) -> String {
    transformation_for_class(&format!("{T}{class}"), &props(pairs))
        .unwrap_err()
        .to_string()
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (s(k), v.clone())).collect())
}

fn person_schema() -> SchemaRef {
    SchemaBuilder::struct_builder()
        .name("Person")
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .field("name", Schema::primitive(Type::String, true))
        .unwrap()
        .field("age", Schema::primitive(Type::Int32, true))
        .unwrap()
        .build()
}

fn person() -> Value {
    Value::Struct(
        Struct::new(person_schema())
            .unwrap()
            .with("id", Value::Int64(7))
            .unwrap()
            .with("name", s("Ann"))
            .unwrap()
            .with("age", Value::Int32(40))
            .unwrap(),
    )
}

fn with_schema() -> ConnectRecord {
    ConnectRecord::new("orders", Some(person_schema()), person())
}

fn schemaless() -> ConnectRecord {
    ConnectRecord::new(
        "orders",
        None,
        map(&[("id", Value::Int64(7)), ("name", s("Ann"))]),
    )
}

fn apply(t: &dyn Transformation, r: ConnectRecord) -> ConnectRecord {
    t.apply(r).unwrap().unwrap()
}

#[test]
fn registry_knows_kafka_names_and_lists_them_for_unknown_ones() {
    let names = known_transformations();
    assert!(names.contains(&format!("{T}InsertField$Value")));
    assert!(names.contains(&"com.github.cjmatta.kafka.connect.smt.InsertUuid$Value".to_string()));
    let e = transformation_for_class("com.example.Nope", &Props::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("com.example.Nope") && e.contains("ExtractField$Key"),
        "{e}"
    );
    assert!(known_predicates()
        .iter()
        .any(|p| p.ends_with("predicates.HasHeaderKey")));
}

#[test]
fn extract_field_with_and_without_schema() {
    let t = make("ExtractField$Value", &[("field", "name")]);
    let r = apply(t.as_ref(), with_schema());
    assert_eq!(r.value, s("Ann"));
    assert_eq!(r.value_schema.unwrap().schema_type, Type::String);
    assert_eq!(apply(t.as_ref(), schemaless()).value, s("Ann"));
    let tomb = apply(t.as_ref(), ConnectRecord::new("t", None, Value::Null));
    assert_eq!(tomb.value, Value::Null);
    let bad = make("ExtractField$Value", &[("field", "nope")]);
    assert_eq!(
        bad.apply(with_schema()).unwrap_err().to_string(),
        "Unknown field: nope"
    );
    let e = t
        .apply(ConnectRecord::new("t", None, Value::Int32(1)))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Only Map objects supported in absence of schema for [field extraction], found: java.lang.Integer"
    );
    assert_eq!(
        err("ExtractField$Key", &[]),
        "Missing required configuration \"field\" which has no default value."
    );
    // Nested with V2.
    let nested = make(
        "ExtractField$Value",
        &[("field", "a.b"), ("field.syntax.version", "V2")],
    );
    let v = map(&[("a", map(&[("b", Value::Int8(3))]))]);
    assert_eq!(
        apply(nested.as_ref(), ConnectRecord::new("t", None, v)).value,
        Value::Int8(3)
    );
    assert!(err(
        "ExtractField$Value",
        &[("field", "a"), ("field.syntax.version", "V3")]
    )
    .contains("field.syntax.version"));
    // Key variant.
    let k = make("ExtractField$Key", &[("field", "id")]);
    let mut rec = schemaless();
    rec.key = map(&[("id", Value::Int64(1))]);
    assert_eq!(apply(k.as_ref(), rec).key, Value::Int64(1));
}

#[test]
fn value_to_key_with_and_without_schema() {
    let t = make("ValueToKey", &[("fields", "id,name")]);
    let r = apply(t.as_ref(), with_schema());
    match &r.key {
        Value::Struct(k) => {
            assert_eq!(k.get("id"), Some(&Value::Int64(7)));
            assert_eq!(k.schema().fields.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    let r = apply(t.as_ref(), schemaless());
    assert_eq!(r.key, map(&[("id", Value::Int64(7)), ("name", s("Ann"))]));
    let bad = make("ValueToKey", &[("fields", "zip")]);
    assert_eq!(
        bad.apply(with_schema()).unwrap_err().to_string(),
        "Field does not exist: zip"
    );
    assert!(err("ValueToKey", &[]).contains("\"fields\""));
}

#[test]
fn insert_field_with_and_without_schema() {
    let t = make(
        "InsertField$Value",
        &[
            ("topic.field", "t!"),
            ("partition.field", "p"),
            ("timestamp.field", "ts"),
            ("static.field", "where"),
            ("static.value", "here"),
        ],
    );
    let mut rec = with_schema();
    rec.partition = Some(3);
    rec.timestamp = Some(1000);
    let r = apply(t.as_ref(), rec.clone());
    let schema = r.value_schema.clone().unwrap();
    assert!(!schema.field("t").unwrap().schema.optional);
    assert!(schema.field("p").unwrap().schema.optional);
    assert_eq!(schema.name.as_deref(), Some("Person"));
    assert_eq!(r.value.get("t"), Some(&s("orders")));
    assert_eq!(r.value.get("p"), Some(&Value::Int32(3)));
    assert_eq!(r.value.get("ts"), Some(&Value::Timestamp(1000)));
    assert_eq!(r.value.get("where"), Some(&s("here")));
    let mut rec = schemaless();
    rec.timestamp = Some(5);
    let r = apply(t.as_ref(), rec);
    assert_eq!(r.value.get("ts"), Some(&Value::Int64(5)));
    assert_eq!(r.value.get("p"), None, "no partition, no field");
    // Offsets only on sink records.
    let o = make("InsertField$Value", &[("offset.field", "o")]);
    assert!(o
        .apply(schemaless())
        .unwrap_err()
        .to_string()
        .contains("SinkRecord"));
    let mut sink = schemaless();
    sink.kafka_offset = Some(42);
    assert_eq!(
        apply(o.as_ref(), sink).value.get("o"),
        Some(&Value::Int64(42))
    );
    // Tombstones pass.
    let tomb = ConnectRecord::new("t", None, Value::Null);
    assert_eq!(apply(t.as_ref(), tomb.clone()), tomb);
}

#[test]
fn replace_field_include_exclude_renames() {
    let t = make(
        "ReplaceField$Value",
        &[("exclude", "age"), ("renames", "name:full_name")],
    );
    let r = apply(t.as_ref(), with_schema());
    let schema = r.value_schema.clone().unwrap();
    let names: Vec<_> = schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "full_name"]);
    assert_eq!(r.value.get("full_name"), Some(&s("Ann")));
    let r = apply(t.as_ref(), schemaless());
    assert_eq!(
        r.value,
        map(&[("id", Value::Int64(7)), ("full_name", s("Ann"))])
    );
    let inc = make("ReplaceField$Value", &[("include", "id")]);
    assert_eq!(
        apply(inc.as_ref(), schemaless()).value,
        map(&[("id", Value::Int64(7))])
    );
    assert_eq!(
        err("ReplaceField$Value", &[("renames", "a:b,c")]),
        "Invalid value [a:b, c] for configuration renames: Invalid rename mapping: c"
    );
}

#[test]
fn mask_field_with_and_without_schema() {
    let t = make("MaskField$Value", &[("fields", "name,age")]);
    let r = apply(t.as_ref(), with_schema());
    assert_eq!(r.value.get("name"), Some(&s("")));
    assert_eq!(r.value.get("age"), Some(&Value::Int32(0)));
    let r = apply(t.as_ref(), schemaless());
    assert_eq!(r.value.get("name"), Some(&s("")));
    assert_eq!(r.value.get("age"), Some(&Value::Null));
    let t = make(
        "MaskField$Value",
        &[("fields", "age"), ("replacement", "99")],
    );
    assert_eq!(
        apply(t.as_ref(), with_schema()).value.get("age"),
        Some(&Value::Int32(99))
    );
    let t = make(
        "MaskField$Value",
        &[("fields", "age"), ("replacement", "x")],
    );
    assert!(t
        .apply(with_schema())
        .unwrap_err()
        .to_string()
        .contains("Unable to convert x"));
    assert!(
        err("MaskField$Value", &[("fields", "a"), ("replacement", " ")]).contains("replacement")
    );
}

#[test]
fn hoist_field_and_set_schema_metadata() {
    let t = make("HoistField$Value", &[("field", "wrapped")]);
    let r = apply(t.as_ref(), with_schema());
    assert_eq!(r.value.get("wrapped"), Some(&person()));
    let r = apply(t.as_ref(), ConnectRecord::new("t", None, Value::Int8(1)));
    assert_eq!(r.value, map(&[("wrapped", Value::Int8(1))]));

    let m = make(
        "SetSchemaMetadata$Value",
        &[("schema.name", "com.example.P"), ("schema.version", "3")],
    );
    let r = apply(m.as_ref(), with_schema());
    let schema = r.value_schema.clone().unwrap();
    assert_eq!(schema.name.as_deref(), Some("com.example.P"));
    assert_eq!(schema.version, Some(3));
    match &r.value {
        Value::Struct(v) => assert_eq!(**v.schema(), *schema),
        other => panic!("{other:?}"),
    }
    assert!(m
        .apply(schemaless())
        .unwrap_err()
        .to_string()
        .contains("Schema required"));
    assert_eq!(
        err("SetSchemaMetadata$Key", &[]),
        "Neither schema name nor version configured"
    );
    assert!(err("SetSchemaMetadata$Key", &[("schema.version", "x")])
        .starts_with("Invalid value x for configuration schema.version"));
}

#[test]
fn routers_and_filter() {
    let t = make(
        "RegexRouter",
        &[("regex", "(.*)-(\\d+)"), ("replacement", "$2_$1\\$")],
    );
    assert_eq!(
        apply(t.as_ref(), ConnectRecord::new("db-42", None, Value::Null)).topic,
        "42_db$"
    );
    assert_eq!(
        apply(t.as_ref(), ConnectRecord::new("other", None, Value::Null)).topic,
        "other"
    );
    assert!(err("RegexRouter", &[("regex", "("), ("replacement", "x")])
        .starts_with("Invalid value ( for configuration regex: Invalid regex"));
    assert!(err("RegexRouter", &[("regex", "x")]).contains("\"replacement\""));

    let ts = make(
        "TimestampRouter",
        &[
            ("topic.format", "${topic}_${timestamp}"),
            ("timestamp.format", "yyyy-MM-dd'T'HH:mm:ss.SSS"),
        ],
    );
    let mut r = ConnectRecord::new("logs", None, Value::Null);
    r.timestamp = Some(1_700_000_000_123);
    assert_eq!(
        apply(ts.as_ref(), r.clone()).topic,
        "logs_2023-11-14T22:13:20.123"
    );
    let d = make("TimestampRouter", &[]);
    assert_eq!(apply(d.as_ref(), r).topic, "logs-20231114");
    assert!(d.apply(ConnectRecord::new("x", None, Value::Null)).is_err());
    assert!(err("TimestampRouter", &[("timestamp.format", "yyyyQ")]).contains("'Q'"));

    let f = make("Filter", &[]);
    assert_eq!(f.apply(schemaless()).unwrap(), None);
}

#[test]
fn header_transforms() {
    let ins = make("InsertHeader", &[("header", "h"), ("value.literal", "42")]);
    let r = apply(ins.as_ref(), schemaless());
    assert_eq!(r.last_header("h").unwrap().value, Value::Int8(42));
    let ins = make(
        "InsertHeader",
        &[("header", "h"), ("value.literal", "hello")],
    );
    let r = apply(ins.as_ref(), r);
    assert_eq!(r.last_header("h").unwrap().value, s("hello"));
    let drop = make("DropHeaders", &[("headers", "h")]);
    assert!(apply(drop.as_ref(), r).headers.is_empty());
    assert!(err("InsertHeader", &[("header", "h")]).contains("value.literal"));

    let mv = make(
        "HeaderFrom$Value",
        &[("fields", "name"), ("headers", "n"), ("operation", "move")],
    );
    let r = apply(mv.as_ref(), with_schema());
    assert_eq!(r.last_header("n").unwrap().value, s("Ann"));
    assert!(r.value_schema.unwrap().field("name").is_none());
    let r = apply(mv.as_ref(), schemaless());
    assert_eq!(r.value, map(&[("id", Value::Int64(7))]));
    assert_eq!(r.last_header("n").unwrap().value, s("Ann"));
    let cp = make(
        "HeaderFrom$Value",
        &[("fields", "name"), ("headers", "n"), ("operation", "copy")],
    );
    let r = apply(cp.as_ref(), with_schema());
    assert_eq!(r.value, person());
    assert_eq!(
        err(
            "HeaderFrom$Value",
            &[("fields", "a,b"), ("headers", "n"), ("operation", "copy")]
        ),
        "'fields' config must have the same number of elements as 'headers' config."
    );
    assert!(err(
        "HeaderFrom$Value",
        &[("fields", "a"), ("headers", "n"), ("operation", "cut")]
    )
    .starts_with("Invalid value cut for configuration operation"));
}

#[test]
fn insert_uuid() {
    let t = transformation_for_class(
        "com.github.cjmatta.kafka.connect.smt.InsertUuid$Value",
        &props(&[("uuid.field.name", "uid")]),
    )
    .unwrap();
    let r = apply(t.as_ref(), with_schema());
    match r.value.get("uid") {
        Some(Value::String(u)) => assert_eq!(u.len(), 36),
        other => panic!("{other:?}"),
    }
    let r = apply(t.as_ref(), schemaless());
    assert!(matches!(r.value.get("uid"), Some(Value::String(_))));
}

#[test]
fn predicates_test_records() {
    let p = predicate_for_class(
        &format!("{T}predicates.TopicNameMatches"),
        &props(&[("pattern", "ord.*")]),
    )
    .unwrap();
    assert!(p.test(&schemaless()).unwrap());
    assert!(!p
        .test(&ConnectRecord::new("xorders", None, Value::Null))
        .unwrap());
    let h = predicate_for_class(
        &format!("{T}predicates.HasHeaderKey"),
        &props(&[("name", "h")]),
    )
    .unwrap();
    let mut r = schemaless();
    assert!(!h.test(&r).unwrap());
    r.headers.push(Header {
        key: "h".into(),
        schema: None,
        value: Value::Null,
    });
    assert!(h.test(&r).unwrap());
    let t =
        predicate_for_class(&format!("{T}predicates.RecordIsTombstone"), &Props::new()).unwrap();
    assert!(t.test(&ConnectRecord::new("t", None, Value::Null)).unwrap());
    assert!(
        predicate_for_class(&format!("{T}predicates.TopicNameMatches"), &Props::new())
            .unwrap_err()
            .to_string()
            .contains("\"pattern\"")
    );
}

fn chain(pairs: &[(&str, &str)]) -> Result<TransformationChain, TransformError> {
    TransformationChain::from_connector_config(&props(pairs))
}

#[test]
fn chain_applies_in_order_with_predicates_and_negate() {
    let c = chain(&[
        ("transforms", "drop, route"),
        ("transforms.drop.type", &format!("{T}Filter")),
        ("transforms.drop.predicate", "isTomb"),
        ("transforms.route.type", &format!("{T}RegexRouter")),
        ("transforms.route.regex", "orders"),
        ("transforms.route.replacement", "o2"),
        ("transforms.route.predicate", "isTomb"),
        ("transforms.route.negate", "true"),
        ("predicates", "isTomb"),
        (
            "predicates.isTomb.type",
            &format!("{T}predicates.RecordIsTombstone"),
        ),
    ])
    .unwrap();
    assert_eq!(c.stages().len(), 2);
    assert_eq!(
        c.apply(ConnectRecord::new("orders", None, Value::Null))
            .unwrap(),
        None
    );
    assert_eq!(c.apply(schemaless()).unwrap().unwrap().topic, "o2");
    assert!(chain(&[]).unwrap().is_empty());
}

#[test]
fn chain_config_errors() {
    let filter = format!("{T}Filter");
    assert_eq!(
        chain(&[("transforms", "a,a"), ("transforms.a.type", &filter)])
            .unwrap_err()
            .to_string(),
        "Invalid value a,a for configuration transforms: Duplicate alias provided."
    );
    assert_eq!(
        chain(&[("transforms", "a")]).unwrap_err().to_string(),
        "Missing required configuration \"transforms.a.type\" which has no default value."
    );
    assert_eq!(
        chain(&[("transforms", "a"), ("transforms.a.type", &filter), ("transforms.a.negate", "true")])
            .unwrap_err()
            .to_string(),
        "Config 'transforms.a.negate' was provided but there is no config 'transforms.a.predicate' defining a predicate to be negated."
    );
    let e = chain(&[("transforms", "a"), ("transforms.a.type", "x.Y")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "Invalid value x.Y for configuration transforms.a.type: Class x.Y could not be found."
        ),
        "{e}"
    );
    assert_eq!(
        chain(&[
            ("transforms", "a"),
            ("transforms.a.type", &filter),
            ("transforms.a.predicate", "p")
        ])
        .unwrap_err()
        .to_string(),
        "Unknown configuration 'predicates.p.type'"
    );
    let e = chain(&[
        ("transforms", "a"),
        ("transforms.a.type", &filter),
        ("transforms.a.predicate", "p"),
        ("transforms.a.negate", "yes"),
        ("predicates", "p"),
        (
            "predicates.p.type",
            &format!("{T}predicates.RecordIsTombstone"),
        ),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(e, "Invalid value yes for configuration transforms.a.negate: Expected value to be either true or false");
    let e = chain(&[
        ("transforms", "a"),
        ("transforms.a.type", &format!("{T}ExtractField$Value")),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"field\""), "{e}");
}

fn envelope(op: &str, before: Option<Value>, after: Option<Value>) -> ConnectRecord {
    let source = SchemaBuilder::struct_builder()
        .field("table", Schema::primitive(Type::String, false))
        .unwrap()
        .build();
    let row = SchemaBuilder::struct_builder()
        .field("id", Schema::primitive(Type::Int64, false))
        .unwrap()
        .optional()
        .build();
    let schema = SchemaBuilder::struct_builder()
        .name("db.t.Envelope")
        .field("before", row.clone())
        .unwrap()
        .field("after", row.clone())
        .unwrap()
        .field("source", source.clone())
        .unwrap()
        .field("op", Schema::primitive(Type::String, false))
        .unwrap()
        .field("ts_ms", Schema::primitive(Type::Int64, true))
        .unwrap()
        .build();
    let mk = |id: Value| Value::Struct(Struct::new(row.clone()).unwrap().with("id", id).unwrap());
    let value = Struct::new(schema.clone())
        .unwrap()
        .with("before", before.map(mk).unwrap_or(Value::Null))
        .unwrap()
        .with("after", after.map(mk).unwrap_or(Value::Null))
        .unwrap()
        .with(
            "source",
            Value::Struct(Struct::new(source).unwrap().with("table", s("t")).unwrap()),
        )
        .unwrap()
        .with("op", s(op))
        .unwrap()
        .with("ts_ms", Value::Int64(9))
        .unwrap();
    ConnectRecord::new("db.t", Some(schema), Value::Struct(value))
}

#[test]
fn debezium_extract_new_record_state() {
    let class = "io.debezium.transforms.ExtractNewRecordState";
    let plain = transformation_for_class(class, &Props::new()).unwrap();
    let r = apply(plain.as_ref(), envelope("c", None, Some(Value::Int64(1))));
    assert_eq!(r.value.get("id"), Some(&Value::Int64(1)));
    assert_eq!(
        plain
            .apply(envelope("d", Some(Value::Int64(1)), None))
            .unwrap(),
        None
    );
    assert_eq!(
        plain
            .apply(ConnectRecord::new("t", None, Value::Null))
            .unwrap(),
        None
    );

    let rw = transformation_for_class(
        class,
        &props(&[
            ("delete.handling.mode", "rewrite"),
            ("add.fields", "op,table,source.table"),
            ("drop.tombstones", "false"),
        ]),
    )
    .unwrap();
    let r = apply(rw.as_ref(), envelope("d", Some(Value::Int64(2)), None));
    assert_eq!(r.value.get("id"), Some(&Value::Int64(2)));
    assert_eq!(r.value.get("__deleted"), Some(&s("true")));
    assert_eq!(r.value.get("__op"), Some(&s("d")));
    assert_eq!(r.value.get("__table"), Some(&s("t")));
    assert_eq!(r.value.get("__source_table"), Some(&s("t")));
    let r = apply(rw.as_ref(), envelope("u", None, Some(Value::Int64(3))));
    assert_eq!(r.value.get("__deleted"), Some(&s("false")));
    let tomb = ConnectRecord::new("t", None, Value::Null);
    assert_eq!(apply(rw.as_ref(), tomb.clone()), tomb);

    let none =
        transformation_for_class(class, &props(&[("delete.handling.mode", "none")])).unwrap();
    assert_eq!(
        apply(none.as_ref(), envelope("d", Some(Value::Int64(2)), None)).value,
        Value::Null
    );

    // Schemaless envelopes.
    let v = map(&[("op", s("c")), ("after", map(&[("id", Value::Int64(5))]))]);
    let r = apply(rw.as_ref(), ConnectRecord::new("t", None, v));
    assert_eq!(
        r.value,
        map(&[
            ("id", Value::Int64(5)),
            ("__op", s("c")),
            ("__table", Value::Null),
            ("__source_table", Value::Null),
            ("__deleted", s("false"))
        ])
    );
    assert!(transformation_for_class(class, &props(&[("delete.handling.mode", "x")])).is_err());
}

#[test]
fn no_transform_panics_on_odd_records() {
    let odd = [
        ConnectRecord::new("t", None, Value::Null),
        ConnectRecord::new("t", None, Value::Int32(1)),
        ConnectRecord::new(
            "t",
            Some(Schema::primitive(Type::Int32, false)),
            Value::Int32(1),
        ),
        ConnectRecord::new("t", Some(person_schema()), Value::Null),
        ConnectRecord::new("t", Some(person_schema()), s("x")),
    ];
    let configs: Vec<(String, Props)> = known_transformations()
        .into_iter()
        .map(|c| {
            let p = props(&[
                ("field", "id"),
                ("fields", "id"),
                ("headers", "id"),
                ("operation", "copy"),
                ("topic.field", "t"),
                ("schema.name", "n"),
                ("regex", ".*"),
                ("replacement", "x"),
                ("header", "h"),
                ("value.literal", "v"),
            ]);
            (c, p)
        })
        .collect();
    for (class, p) in configs {
        let t = transformation_for_class(&class, &p).unwrap_or_else(|e| panic!("{class}: {e}"));
        for r in &odd {
            let _ = t.apply(r.clone());
        }
    }
}
