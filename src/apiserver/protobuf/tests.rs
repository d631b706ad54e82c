//! Unit tests of the protobuf codec: kubectl-recorded bodies, hand-built wire data,
//! round trips of realistic objects of every served kind, hostile input.

use super::wellknown::GO_ZERO_TIME_SECONDS;
use super::*;
use serde_json::{Value, json};

/// A minimal protobuf writer, used only to build test inputs.
#[derive(Default, Clone)]
struct Pb(Vec<u8>);

impl Pb {
    fn new() -> Self {
        Pb::default()
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, num: u32, wire: u8) {
        self.raw_varint((u64::from(num) << 3) | u64::from(wire));
    }

    fn uint(mut self, num: u32, v: u64) -> Self {
        self.key(num, 0);
        self.raw_varint(v);
        self
    }

    fn int(self, num: u32, v: i64) -> Self {
        self.uint(num, v as u64)
    }

    fn boolean(self, num: u32, v: bool) -> Self {
        self.uint(num, u64::from(v))
    }

    fn bytes(mut self, num: u32, b: &[u8]) -> Self {
        self.key(num, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn str(self, num: u32, s: &str) -> Self {
        self.bytes(num, s.as_bytes())
    }

    fn msg(self, num: u32, m: Pb) -> Self {
        self.bytes(num, &m.0)
    }

    fn entry(self, num: u32, key: &str, value: &str) -> Self {
        self.msg(num, Pb::new().str(1, key).str(2, value))
    }

    fn fixed64(mut self, num: u32, v: u64) -> Self {
        self.key(num, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn fixed32(mut self, num: u32, v: u32) -> Self {
        self.key(num, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// Wraps a typed message in the magic prefix and `runtime.Unknown`, as client-go does.
fn envelope(api_version: &str, kind: &str, raw: Pb) -> Vec<u8> {
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(3, "")
        .str(4, "");
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&unknown.0);
    body
}

fn time(seconds: i64, nanos: i64) -> Pb {
    Pb::new().int(1, seconds).int(2, nanos)
}

fn meta(name: &str) -> Pb {
    // What gogo-protobuf writes for an ObjectMeta with only a name.
    Pb::new()
        .str(1, name)
        .str(2, "")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, Pb::new())
}

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(text, 16).expect("hex digit")
        })
        .collect()
}

/// Compares values and key order, which `Value`'s own equality ignores.
fn assert_json(actual: &Value, expected: &str) {
    let expected: Value = serde_json::from_str(expected).expect("expected JSON parses");
    assert_eq!(
        serde_json::to_string_pretty(actual).expect("serialize"),
        serde_json::to_string_pretty(&expected).expect("serialize")
    );
}

/// Bodies recorded from kubectl v1.32.4 against a loopback fake server, with the JSON the
/// same commands print under `--dry-run=client -o json` (less its `null` members).
const KUBECTL_BODIES: &[(&str, &str, &str)] = &[
    (
        "create namespace foo",
        "6b3873000a0f0a02763112094e616d657370616365121b0a130a03666f6f12001a0022002a003200\
         3800420012001a020a001a002200",
        r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"foo"},"spec":{},"status":{}}"#,
    ),
    (
        "create configmap c --from-literal=a=b --from-file=f.txt --from-file=bin.dat",
        "6b3873000a0f0a0276311209436f6e6669674d6170123c0a110a016312001a0022002a0032003800\
         420012060a0161120162120f0a05662e747874120668656c6c6f0a1a0e0a0762696e2e6461741203\
         0001ff1a002200",
        r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"a":"b","f.txt":"hello\n"},"binaryData":{"bin.dat":"AAH/"}}"#,
    ),
    (
        "create secret generic s --from-literal=k=v",
        "6b3873000a0c0a0276311206536563726574121d0a110a017312001a0022002a0032003800420012\
         060a016b1201761a001a002200",
        r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},"data":{"k":"dg=="}}"#,
    ),
    (
        "create secret docker-registry d",
        "6b3873000a0c0a0276311206536563726574128f010a110a016412001a0022002a00320038004200\
         125a0a112e646f636b6572636f6e6669676a736f6e12457b226175746873223a7b22722e6578616d\
         706c65223a7b22757365726e616d65223a2275222c2270617373776f7264223a2270222c22617574\
         68223a2264547077227d7d7d1a1e6b756265726e657465732e696f2f646f636b6572636f6e666967\
         6a736f6e1a002200",
        r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"d"},"data":{".dockerconfigjson":"eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19"},"type":"kubernetes.io/dockerconfigjson"}"#,
    ),
    (
        "create serviceaccount sa",
        "6b3873000a140a027631120e536572766963654163636f756e7412140a120a02736112001a002200\
         2a003200380042001a002200",
        r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa"}}"#,
    ),
    (
        "create service clusterip svc --tcp=80:8080",
        "6b3873000a0d0a02763112075365727669636512690a1f0a0373766312001a0022002a0032003800\
         42005a0a0a03617070120373766312420a1b0a0738302d3830383012035443501850220708001090\
         3f1a002800120a0a0361707012037376631a002209436c757374657249503a00420052005a006000\
         68001a020a001a002200",
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"svc","labels":{"app":"svc"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"svc"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "create service nodeport np --tcp=80:http --node-port=30080",
        "6b3873000a0d0a027631120753657276696365126a0a1d0a026e7012001a0022002a003200380042\
         005a090a0361707012026e7012450a200a0738302d6874747012035443501850220a080110001a04\
         687474702880eb0112090a0361707012026e701a0022084e6f6465506f72743a00420052005a0060\
         0068001a020a001a002200",
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"np","labels":{"app":"np"}},"spec":{"ports":[{"name":"80-http","protocol":"TCP","port":80,"targetPort":"http","nodePort":30080}],"selector":{"app":"np"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "create service loadbalancer lb --tcp=443:8443",
        "6b3873000a0d0a027631120753657276696365126b0a1d0a026c6212001a0022002a003200380042\
         005a090a0361707012026c6212460a1d0a083434332d38343433120354435018bb032207080010fb\
         411a00280012090a0361707012026c621a00220c4c6f616442616c616e6365723a00420052005a00\
         600068001a020a001a002200",
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"lb","labels":{"app":"lb"}},"spec":{"ports":[{"name":"443-8443","protocol":"TCP","port":443,"targetPort":8443}],"selector":{"app":"lb"},"type":"LoadBalancer"},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "create service externalname en --external-name=db.example",
        "6b3873000a0d0a02763112075365727669636512560a1d0a02656e12001a0022002a003200380042\
         005a090a036170701202656e123112090a036170701202656e1a00220c45787465726e616c4e616d\
         653a004200520a64622e6578616d706c655a00600068001a020a001a002200",
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"en","labels":{"app":"en"}},"spec":{"selector":{"app":"en"},"type":"ExternalName","externalName":"db.example"},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "create service clusterip hl --clusterip=None",
        "6b3873000a0d0a027631120753657276696365124d0a1d0a02686c12001a0022002a003200380042\
         005a090a036170701202686c122812090a036170701202686c1a044e6f6e652209436c7573746572\
         49503a00420052005a00600068001a020a001a002200",
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"hl","labels":{"app":"hl"}},"spec":{"selector":{"app":"hl"},"clusterIP":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "create token sa --duration=1h --audience=a1",
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52\
         65717565737412210a100a0012001a0022002a0032003800420012070a02613120901c1a040a0012\
         001a002200",
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{},"spec":{"audiences":["a1"],"expirationSeconds":3600},"status":{"token":""}}"#,
    ),
    (
        "create deployment dep --image=nginx --replicas=2 --port=80",
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a1f0a0364657012001a\
         0022002a003200380042005a0a0a0361707012036465701286010802120c0a0a0a03617070120364\
         65701a6c0a1c0a0012001a0022002a003200380042005a0a0a036170701203646570124c122e0a05\
         6e67696e7812056e67696e782a00320a0a001000185022002a0042006a0072008001008801009001\
         00a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a0028003800\
         1a0c0800100018002000280038001a002200",
        r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"dep","labels":{"app":"dep"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"dep"}},"template":{"metadata":{"labels":{"app":"dep"}},"spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}"#,
    ),
    (
        "create job j --image=busybox -- echo hi",
        "6b3873000a0f0a0862617463682f763112034a6f621282010a110a016a12001a0022002a00320038\
         004200126332610a100a0012001a0022002a00320038004200124d122a0a016a120762757379626f\
         781a046563686f1a0268692a0042006a007200800100880100900100a201001a054e657665723200\
         42004a0052005800600068008201008a01009a0100c201001a082000280030003a001a002200",
        r#"{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"j","image":"busybox","command":["echo","hi"],"resources":{}}],"restartPolicy":"Never"}}},"status":{}}"#,
    ),
    (
        "create cronjob cj --image=busybox --schedule='*/1 * * * *'",
        "6b3873000a130a0862617463682f7631120743726f6e4a6f62129e010a120a02636a12001a002200\
         2a003200380042001285010a0b2a2f31202a202a202a202a1a002a740a120a02636a12001a002200\
         2a00320038004200125e325c0a100a0012001a0022002a00320038004200124812210a02636a1207\
         62757379626f782a0042006a007200800100880100900100a201001a094f6e4661696c7572653200\
         42004a0052005800600068008201008a01009a0100c201001a001a002200",
        r#"{"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"cj"},"spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"cj"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"cj","image":"busybox","resources":{}}],"restartPolicy":"OnFailure"}}}}},"status":{}}"#,
    ),
    (
        "create rolebinding rb --role=r --user=u",
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f\
         6c6542696e64696e6712620a120a02726212001a0022002a0032003800420012260a045573657212\
         19726261632e617574686f72697a6174696f6e2e6b38732e696f1a017522001a240a19726261632e\
         617574686f72697a6174696f6e2e6b38732e696f1204526f6c651a01721a002200",
        r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"u"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"}}"#,
    ),
    (
        "create clusterrolebinding crb --clusterrole=cr --user=u",
        "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c\
         7573746572526f6c6542696e64696e67126b0a130a0363726212001a0022002a0032003800420012\
         260a04557365721219726261632e617574686f72697a6174696f6e2e6b38732e696f1a017522001a\
         2c0a19726261632e617574686f72697a6174696f6e2e6b38732e696f120b436c7573746572526f6c\
         651a0263721a002200",
        r#"{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"crb"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"u"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cr"}}"#,
    ),
    (
        "create quota q --hard=pods=10,cpu=1",
        "6b3873000a130a027631120d5265736f7572636551756f746112310a110a017112001a0022002a00\
         320038004200121a0a0a0a0363707512030a01310a0c0a04706f647312040a0231301a001a002200",
        r#"{"kind":"ResourceQuota","apiVersion":"v1","metadata":{"name":"q"},"spec":{"hard":{"cpu":"1","pods":"10"}},"status":{}}"#,
    ),
    (
        "create priorityclass pc --value=1000",
        "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c\
         61737312310a120a02706312001a0022002a0032003800420010e807180022002a14507265656d70\
         744c6f7765725072696f726974791a002200",
        r#"{"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"pc"},"value":1000,"preemptionPolicy":"PreemptLowerPriority"}"#,
    ),
    (
        "create poddisruptionbudget pdb --selector=app=x --min-available=1",
        "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e4275646765741237\
         0a130a0370646212001a0022002a0032003800420012140a06080010011a00120a0a080a03617070\
         1201781a0a080018002000280030001a002200",
        r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb"},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"x"}}},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
    ),
    (
        "create ingress ing --rule=a.example/=svc:80",
        "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312470a\
         130a03696e6712001a0022002a00320038004200122c1a2a0a09612e6578616d706c65121d0a1b0a\
         190a012f120d220b0a0373766312040a0010501a0545786163741a020a001a002200",
        r#"{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ing"},"spec":{"rules":[{"host":"a.example","http":{"paths":[{"path":"/","pathType":"Exact","backend":{"service":{"name":"svc","port":{"number":80}}}}]}}]},"status":{"loadBalancer":{}}}"#,
    ),
    (
        "create role r --verb=get,list --resource=pods --resource-name=p1",
        "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f\
         6c65122c0a110a017212001a0022002a0032003800420012170a036765740a046c69737412001a04\
         706f6473220270311a002200",
        r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r"},"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"],"resourceNames":["p1"]}]}"#,
    ),
    (
        "create clusterrole cr --verb=get --resource=pods --non-resource-url=/healthz",
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c\
         7573746572526f6c6512340a120a02637212001a0022002a00320038004200120d0a036765741200\
         1a04706f6473120f0a036765742a082f6865616c74687a1a002200",
        r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr"},"rules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]},{"verbs":["get"],"nonResourceURLs":["/healthz"]}]}"#,
    ),
];

#[test]
fn decodes_recorded_kubectl_bodies() {
    for (command, body, expected) in KUBECTL_BODIES {
        let body = hex(body);
        let decoded = decode_body(&body).unwrap_or_else(|e| panic!("kubectl {command}: {e}"));
        assert_json(&decoded, expected);
    }
}

#[test]
fn truncated_recorded_bodies_fail_without_panicking() {
    for (command, body, _) in KUBECTL_BODIES {
        let body = hex(body);
        for len in 0..body.len() {
            let _ = decode_body(&body[..len]);
        }
        // Cut inside `raw`, just before the 4-byte contentEncoding/contentType trailer.
        let cut = &body[..body.len() - 5];
        assert!(
            matches!(decode_body(cut), Err(ProtobufError::Truncated(_))),
            "kubectl {command}"
        );
    }
}

#[test]
fn namespace_with_full_object_meta() {
    let fields_v1 = br#"{"f:metadata":{"f:labels":{}}}"#;
    let metadata = Pb::new()
        .str(1, "web")
        .str(2, "")
        .str(3, "default")
        .str(5, "u-1")
        .str(6, "7")
        .int(7, 3)
        .msg(8, time(1_700_000_000, 5))
        .msg(9, time(1_700_000_100, 0))
        .int(10, 0)
        .entry(11, "b", "2")
        .entry(11, "a", "1")
        .entry(12, "note", "x")
        .msg(
            13,
            Pb::new()
                .str(1, "ReplicaSet")
                .str(3, "rs")
                .str(4, "r-1")
                .str(5, "apps/v1")
                .boolean(6, true)
                .boolean(7, false),
        )
        .str(14, "f1")
        .str(14, "f2")
        .msg(
            17,
            Pb::new()
                .str(1, "kubectl")
                .str(2, "Update")
                .str(3, "v1")
                .msg(4, time(1_700_000_000, 0))
                .str(6, "FieldsV1")
                .msg(7, Pb::new().bytes(1, fields_v1)),
        );
    let raw = Pb::new()
        .msg(1, metadata)
        .msg(2, Pb::new().str(1, "kubernetes"))
        .msg(3, Pb::new().str(1, "Active"));
    let decoded = decode_body(&envelope("v1", "Namespace", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "Namespace",
          "apiVersion": "v1",
          "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "7",
            "generation": 3,
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionTimestamp": "2023-11-14T22:15:00Z",
            "deletionGracePeriodSeconds": 0,
            "labels": {"a": "1", "b": "2"},
            "annotations": {"note": "x"},
            "ownerReferences": [{
              "apiVersion": "apps/v1",
              "kind": "ReplicaSet",
              "name": "rs",
              "uid": "r-1",
              "controller": true,
              "blockOwnerDeletion": false
            }],
            "finalizers": ["f1", "f2"],
            "managedFields": [{
              "manager": "kubectl",
              "operation": "Update",
              "apiVersion": "v1",
              "time": "2023-11-14T22:13:20Z",
              "fieldsType": "FieldsV1",
              "fieldsV1": {"f:metadata": {"f:labels": {}}}
            }]
          },
          "spec": {"finalizers": ["kubernetes"]},
          "status": {"phase": "Active"}
        }"#,
    );
}

#[test]
fn pod_with_inline_volumes_probes_and_pointer_zeros() {
    let container = Pb::new()
        .str(1, "app")
        .str(2, "nginx:1.27")
        .str(3, "nginx")
        .str(4, "-g")
        .str(4, "daemon off;")
        .msg(6, Pb::new().str(1, "http").int(3, 80).str(4, "TCP"))
        .msg(7, Pb::new().str(1, "MODE").str(2, "prod"))
        .msg(7, Pb::new().str(1, "EMPTY").str(2, ""))
        .msg(
            8,
            Pb::new()
                .msg(
                    1,
                    Pb::new().str(1, "memory").msg(2, Pb::new().str(1, "128Mi")),
                )
                .msg(1, Pb::new().str(1, "cpu").msg(2, Pb::new().str(1, "500m"))),
        )
        .msg(
            9,
            Pb::new().str(1, "cfg").boolean(2, true).str(3, "/etc/app"),
        )
        .msg(
            10,
            Pb::new()
                .msg(
                    1,
                    Pb::new().msg(
                        2,
                        Pb::new()
                            .str(1, "/healthz")
                            .msg(2, Pb::new().int(1, 1).str(3, "http")),
                    ),
                )
                .int(4, 10),
        )
        .str(14, "IfNotPresent")
        .msg(15, Pb::new().boolean(2, false).int(4, 0))
        .boolean(16, false);
    let packed_groups = {
        let mut p = Pb::new();
        p.raw_varint(1000);
        p.raw_varint(2000);
        p
    };
    let spec = Pb::new()
        .msg(
            1,
            Pb::new().str(1, "cfg").msg(
                2,
                Pb::new().msg(
                    19,
                    Pb::new().msg(1, Pb::new().str(1, "app-config")).int(3, 420),
                ),
            ),
        )
        .msg(
            1,
            Pb::new()
                .str(1, "scratch")
                .msg(2, Pb::new().msg(2, Pb::new())),
        )
        .msg(2, container)
        .str(3, "Always")
        .int(4, 0)
        .entry(7, "disk", "ssd")
        .boolean(11, false)
        .msg(14, Pb::new().boolean(3, true).msg(4, packed_groups))
        .msg(22, Pb::new().str(1, "k").str(2, "Exists").int(5, 30))
        .int(25, -5);
    let status = Pb::new().str(1, "Pending").msg(7, Pb::new()).msg(
        8,
        Pb::new()
            .str(1, "app")
            .boolean(4, false)
            .int(5, 0)
            .str(6, "nginx:1.27")
            .str(7, ""),
    );
    let raw = Pb::new().msg(1, meta("web")).msg(2, spec).msg(3, status);
    let decoded = decode_body(&envelope("v1", "Pod", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "Pod",
          "apiVersion": "v1",
          "metadata": {"name": "web"},
          "spec": {
            "volumes": [
              {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 420}},
              {"name": "scratch", "emptyDir": {}}
            ],
            "containers": [{
              "name": "app",
              "image": "nginx:1.27",
              "command": ["nginx"],
              "args": ["-g", "daemon off;"],
              "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
              "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY"}],
              "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
              "volumeMounts": [{"name": "cfg", "readOnly": true, "mountPath": "/etc/app"}],
              "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": "http"},
                "periodSeconds": 10
              },
              "imagePullPolicy": "IfNotPresent",
              "securityContext": {"privileged": false, "runAsUser": 0}
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"disk": "ssd"},
            "securityContext": {"runAsNonRoot": true, "supplementalGroups": [1000, 2000]},
            "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
            "priority": -5
          },
          "status": {
            "phase": "Pending",
            "containerStatuses": [{
              "name": "app",
              "ready": false,
              "restartCount": 0,
              "image": "nginx:1.27",
              "imageID": ""
            }]
          }
        }"#,
    );
}

#[test]
fn service_with_full_spec() {
    let spec = Pb::new()
        .msg(
            1,
            Pb::new()
                .str(1, "https")
                .str(2, "TCP")
                .int(3, 443)
                .msg(4, Pb::new().int(1, 0).int(2, 0).str(3, ""))
                .int(5, 0),
        )
        .entry(2, "app", "web")
        .str(3, "10.96.0.10")
        .str(4, "LoadBalancer")
        .str(7, "ClientIP")
        .str(8, "")
        .str(10, "")
        .str(11, "Local")
        .int(12, 32000)
        .boolean(13, true)
        .msg(14, Pb::new().msg(1, Pb::new().int(1, 0)))
        .str(17, "PreferDualStack")
        .str(18, "10.96.0.10")
        .str(18, "fd00::a")
        .str(19, "IPv4")
        .str(19, "IPv6")
        .boolean(20, false)
        .str(22, "Cluster");
    let status = Pb::new().msg(1, Pb::new().msg(1, Pb::new().str(1, "1.2.3.4")));
    let raw = Pb::new().msg(1, meta("web")).msg(2, spec).msg(3, status);
    // targetPort is an IntOrString struct: Go prints its zero value.
    let decoded = decode_body(&envelope("v1", "Service", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "Service",
          "apiVersion": "v1",
          "metadata": {"name": "web"},
          "spec": {
            "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 0}],
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10", "fd00::a"],
            "type": "LoadBalancer",
            "sessionAffinity": "ClientIP",
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 32000,
            "publishNotReadyAddresses": true,
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}},
            "ipFamilies": ["IPv4", "IPv6"],
            "ipFamilyPolicy": "PreferDualStack",
            "allocateLoadBalancerNodePorts": false,
            "internalTrafficPolicy": "Cluster"
          },
          "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
        }"#,
    );
}

#[test]
fn secret_bytes_are_base64_and_pointer_false_is_kept() {
    let raw = Pb::new()
        .msg(1, meta("s").str(2, "s-"))
        .msg(2, Pb::new().str(1, "bin").bytes(2, &[0, 255]))
        .msg(2, Pb::new().str(1, "a").bytes(2, b"hi"))
        .str(3, "Opaque")
        .entry(4, "plain", "text")
        .boolean(5, false);
    let decoded = decode_body(&envelope("v1", "Secret", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "Secret",
          "apiVersion": "v1",
          "metadata": {"name": "s", "generateName": "s-"},
          "immutable": false,
          "data": {"a": "aGk=", "bin": "AP8="},
          "stringData": {"plain": "text"},
          "type": "Opaque"
        }"#,
    );
}

#[test]
fn config_map_entries_sorted_last_wins_and_missing_value_is_empty() {
    let raw = Pb::new()
        .msg(1, meta("c"))
        .entry(2, "k", "old")
        .entry(2, "k", "new")
        .msg(2, Pb::new().str(1, "z"))
        .entry(2, "a", "1")
        .msg(3, Pb::new().str(1, "b").bytes(2, b"\x01\x02"))
        .boolean(4, true);
    let decoded = decode_body(&envelope("v1", "ConfigMap", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "ConfigMap",
          "apiVersion": "v1",
          "metadata": {"name": "c"},
          "immutable": true,
          "data": {"a": "1", "k": "new", "z": ""},
          "binaryData": {"b": "AQI="}
        }"#,
    );
}

#[test]
fn service_account_references() {
    let raw = Pb::new()
        .msg(1, meta("sa"))
        .msg(2, Pb::new().str(1, "Secret").str(3, "tok"))
        .msg(3, Pb::new().str(1, "reg"))
        .boolean(4, false);
    let decoded = decode_body(&envelope("v1", "ServiceAccount", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "ServiceAccount",
          "apiVersion": "v1",
          "metadata": {"name": "sa"},
          "secrets": [{"kind": "Secret", "name": "tok"}],
          "imagePullSecrets": [{"name": "reg"}],
          "automountServiceAccountToken": false
        }"#,
    );
}

#[test]
/// Go ignores `omitempty` on structs, and IntOrString is one: on the wire means printed.
fn int_or_string_on_the_wire_is_always_printed() {
    let spec = Pb::new()
        .msg(1, Pb::new().int(1, 1).str(3, "50%"))
        .msg(3, Pb::new().int(1, 0).int(2, 0));
    let raw = Pb::new().msg(1, meta("pdb")).msg(2, spec);
    let decoded = decode_body(&envelope("policy/v1", "PodDisruptionBudget", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{
          "kind": "PodDisruptionBudget",
          "apiVersion": "policy/v1",
          "metadata": {"name": "pdb"},
          "spec": {"minAvailable": "50%", "maxUnavailable": 0}
        }"#,
    );
}

#[test]
fn negative_int32_and_repeated_message_fields_merge() {
    let raw = Pb::new()
        .msg(1, Pb::new().str(1, "pc"))
        .msg(1, Pb::new().entry(11, "tier", "low"))
        .int(2, -5)
        .boolean(3, false)
        .str(4, "");
    let decoded = decode_body(&envelope("scheduling.k8s.io/v1", "PriorityClass", raw)).expect("ok");
    assert_json(
        &decoded,
        r#"{
          "kind": "PriorityClass",
          "apiVersion": "scheduling.k8s.io/v1",
          "metadata": {"name": "pc", "labels": {"tier": "low"}},
          "value": -5
        }"#,
    );
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let metadata = meta("foo")
        .uint(99, 7)
        .fixed64(100, 1)
        .fixed32(101, 2)
        .str(102, "x")
        .msg(11, Pb::new().str(1, "l").str(2, "v").uint(3, 1));
    let raw = Pb::new().msg(1, metadata).fixed32(50, 9);
    let mut body = envelope("v1", "Namespace", raw);
    body.extend_from_slice(&Pb::new().uint(15, 1).fixed64(16, 2).0);
    let decoded = decode_body(&body).expect("decodes");
    assert_json(
        &decoded,
        r#"{"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "foo", "labels": {"l": "v"}}}"#,
    );
}

#[test]
fn zero_and_fractional_times() {
    let metadata = meta("t")
        .msg(8, time(GO_ZERO_TIME_SECONDS, 0))
        .msg(9, time(0, 999_999_999));
    let raw = Pb::new().msg(1, metadata);
    let decoded = decode_body(&envelope("v1", "Namespace", raw)).expect("decodes");
    assert_json(
        &decoded,
        r#"{"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": "t", "deletionTimestamp": "1970-01-01T00:00:00Z"}}"#,
    );

    let raw = Pb::new().msg(1, meta("t").msg(8, time(i64::MAX, 0)));
    let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("out of range");
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
}

#[test]
fn rejects_missing_magic() {
    for body in [
        &b""[..],
        b"k8s",
        b"{\"kind\":\"Namespace\"}",
        b"k8s\x01\x0a\x00",
    ] {
        assert!(matches!(
            decode_body(body),
            Err(ProtobufError::MissingMagic)
        ));
    }
}

#[test]
fn rejects_unsupported_kind_with_gvk_message() {
    let err = decode_body(&envelope("v1", "Frobnicator", Pb::new())).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "no protobuf message for \"v1, Kind=Frobnicator\""
    );
    assert!(err.is_unsupported_media_type());
    assert!(!is_supported_kind("v1", "Frobnicator"));
    assert!(is_supported_kind("v1", "Namespace"));
    assert!(is_supported_kind("apps/v1", "Deployment"));
    assert!(!is_supported_kind("apps/v1", "Namespace"));

    let bare = [&MAGIC[..], &Pb::new().msg(2, Pb::new()).0[..]].concat();
    assert!(matches!(
        decode_body(&bare),
        Err(ProtobufError::UnsupportedKind { .. })
    ));
}

#[test]
fn rejects_content_encoding() {
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, "v1").str(2, "Namespace"))
        .msg(2, Pb::new())
        .str(3, "gzip");
    let body = [&MAGIC[..], &unknown.0[..]].concat();
    let err = decode_body(&body).expect_err("gzip");
    assert!(matches!(err, ProtobufError::UnsupportedEncoding(_)));
    assert!(err.is_unsupported_media_type());
}

#[test]
fn rejects_invalid_utf8() {
    let raw = Pb::new().msg(1, Pb::new().bytes(1, b"\xff\xfe"));
    let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("utf8");
    assert!(
        matches!(
            err,
            ProtobufError::InvalidUtf8 {
                message: "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                field: 1
            }
        ),
        "{err}"
    );
    assert!(!err.is_unsupported_media_type());

    let raw = Pb::new().msg(1, Pb::new().msg(11, Pb::new().bytes(1, b"\xc3")));
    let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("utf8 key");
    assert!(matches!(err, ProtobufError::InvalidUtf8 { .. }), "{err}");
}

#[test]
fn rejects_wrong_wire_types_and_bad_varints() {
    // metadata.name sent as a varint.
    let raw = Pb::new().msg(1, Pb::new().uint(1, 5));
    let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("wire type");
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");

    // A varint longer than ten bytes.
    let mut raw = Pb::new();
    raw.key(7, 0);
    raw.0.extend_from_slice(&[0xff; 11]);
    let raw = Pb::new().msg(1, raw);
    let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("varint");
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");

    // Field number zero and the deprecated group wire types.
    for bad in [vec![0x00, 0x00], vec![0x0b], vec![0x0c]] {
        let body = [&MAGIC[..], &bad[..]].concat();
        let err = decode_body(&body).expect_err("malformed");
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
    }

    // A length running past the end.
    let body = [&MAGIC[..], &[0x12, 0x05, 0x00][..]].concat();
    assert!(matches!(
        decode_body(&body),
        Err(ProtobufError::Truncated("runtime.Unknown"))
    ));

    // FieldsV1 that is not JSON.
    let raw = Pb::new().msg(
        1,
        Pb::new().msg(17, Pb::new().msg(7, Pb::new().bytes(1, b"{nope"))),
    );
    let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("fieldsV1");
    assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Encoding, round trips, schema
// ---------------------------------------------------------------------------------------

/// A pod as the API server stores it after defaulting, with the fields where Go's zero
/// values matter (pointer zeros, `false`, IntOrString, Quantity, times, managedFields).
pub(super) fn realistic_pod(i: usize) -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": format!("web-{i}"),
            "namespace": "default",
            "uid": format!("6b1c4f7e-0000-4000-8000-{i:012}"),
            "resourceVersion": format!("{}", 1000 + i),
            "generation": 1,
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "labels": {"app": "web", "pod-template-hash": "5d8f9c"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-02T03:00:00Z"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f9c",
                "uid": "0f0e0d0c-0000-4000-8000-000000000001",
                "controller": true, "blockOwnerDeletion": true
            }],
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "v1", "time": "2025-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
            }]
        },
        "spec": {
            "volumes": [
                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "kube-api-access", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
                ], "defaultMode": 420}}
            ],
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.27",
                "command": ["nginx", "-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                 {"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"},
                                  "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3},
                "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 1, "periodSeconds": 5,
                                   "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"privileged": false, "runAsUser": 0, "allowPrivilegeEscalation": false}
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "automountServiceAccountToken": false,
            "nodeName": "rkind-control-plane",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null,
                            "lastTransitionTime": "2025-01-02T03:04:09Z"}],
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "podIP": "10.244.0.7",
            "podIPs": [{"ip": "10.244.0.7"}],
            "startTime": "2025-01-02T03:04:05Z",
            "containerStatuses": [{
                "name": "nginx",
                "state": {"running": {"startedAt": "2025-01-02T03:04:07Z"}},
                "lastState": {},
                "ready": true,
                "restartCount": 0,
                "image": "docker.io/library/nginx:1.27",
                "imageID": "sha256:0123abcd",
                "containerID": "containerd://abc123",
                "started": true
            }],
            "qosClass": "Burstable"
        }
    })
}

/// Drops the members Go would not print after a protobuf round trip: nulls, and the
/// `kind`/`apiVersion` of list items (protobuf carries them only in the envelope).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn served_objects() -> Vec<Value> {
    vec![
        realistic_pod(1),
        json!({"kind": "Namespace", "apiVersion": "v1",
               "metadata": {"name": "team-a", "uid": "u-1", "resourceVersion": "5",
                            "creationTimestamp": "2025-01-02T03:04:05Z",
                            "labels": {"kubernetes.io/metadata.name": "team-a"}},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"kind": "Node", "apiVersion": "v1",
               "metadata": {"name": "rkind-control-plane", "labels": {"kubernetes.io/os": "linux"}},
               "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                        "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
               "status": {"capacity": {"cpu": "2", "memory": "4026524Ki", "pods": "110"},
                          "allocatable": {"cpu": "2", "memory": "4026524Ki", "pods": "110"},
                          "conditions": [{"type": "Ready", "status": "True",
                                          "lastHeartbeatTime": "2025-01-02T03:04:05Z",
                                          "lastTransitionTime": "2025-01-02T03:04:05Z",
                                          "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                          "addresses": [{"type": "InternalIP", "address": "172.18.0.2"},
                                        {"type": "Hostname", "address": "rkind-control-plane"}],
                          "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                          "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b",
                                       "kernelVersion": "6.1", "osImage": "rkind", "containerRuntimeVersion": "rkind://0.1",
                                       "kubeletVersion": "v1.32.4", "kubeProxyVersion": "", "operatingSystem": "linux",
                                       "architecture": "amd64"}}}),
        json!({"kind": "Event", "apiVersion": "v1",
               "metadata": {"name": "web-1.17f", "namespace": "default"},
               "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u", "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{nginx}"},
               "reason": "Pulled", "message": "Container image already present", "source": {"component": "kubelet", "host": "n"},
               "firstTimestamp": "2025-01-02T03:04:05Z", "lastTimestamp": "2025-01-02T03:04:06Z", "count": 2, "type": "Normal",
               "eventTime": "2025-01-02T03:04:05.123456Z", "reportingComponent": "kubelet", "reportingInstance": "n"}),
        json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080}],
                        "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                        "type": "NodePort", "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                        "allocateLoadBalancerNodePorts": false},
               "status": {"loadBalancer": {}}}),
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "namespace": "default"},
               "data": {"a": "b", "empty": ""}, "binaryData": {"bin": "AAH/"}, "immutable": false}),
        json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "namespace": "default"},
               "data": {"k": "dg=="}, "stringData": {"x": "y"}, "type": "Opaque", "immutable": true}),
        json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "default", "namespace": "default"},
               "secrets": [{"name": "t"}], "imagePullSecrets": [{"name": "p"}], "automountServiceAccountToken": false}),
        json!({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "web-1", "namespace": "default"},
               "target": {"kind": "Node", "name": "rkind-control-plane"}}),
        json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
               "metadata": {"name": "rkind-control-plane", "namespace": "kube-node-lease"},
               "spec": {"holderIdentity": "rkind-control-plane", "leaseDurationSeconds": 40,
                        "acquireTime": "2025-01-02T03:04:05.000000Z", "renewTime": "2025-01-02T03:04:45.250000Z",
                        "leaseTransitions": 0}}),
        json!({"kind": "Event", "apiVersion": "events.k8s.io/v1",
               "metadata": {"name": "e", "namespace": "default"},
               "eventTime": "2025-01-02T03:04:05.000001Z", "reportingController": "kubelet", "reportingInstance": "n",
               "action": "Pulling", "reason": "Pulling", "regarding": {"kind": "Pod", "name": "web-1"},
               "note": "Pulling image", "type": "Normal",
               "series": {"count": 3, "lastObservedTime": "2025-01-02T03:04:09.000000Z"}}),
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "dep", "namespace": "default"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "dep"}},
                        "template": {"metadata": {"labels": {"app": "dep"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                              "terminationGracePeriodSeconds": 0}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}},
                        "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
               "status": {"observedGeneration": 1, "collisionCount": 0}}),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods \"x\" not found", "reason": "NotFound",
               "details": {"name": "x", "kind": "pods"}, "code": 404}),
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
               "preconditions": {"uid": "u-1"}, "propagationPolicy": "Background", "dryRun": ["All"]}),
        json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
               "metadata": {"name": "l", "namespace": "default"}, "spec": {}}),
    ]
}

/// What the server would hold for `object`: its typed normalisation (the same the API
/// server applies to bodies), less nulls.
fn normalised(object: &Value) -> Value {
    let (group, _) = object["apiVersion"]
        .as_str()
        .unwrap_or("")
        .rsplit_once('/')
        .unwrap_or(("", ""));
    let kind = object["kind"].as_str().unwrap_or("");
    let kinds = crate::apiserver::kinds::builtins();
    let (v, _) = match kinds
        .iter()
        .find(|k| k.def().group == group && k.def().kind == kind)
    {
        Some(strategy) => strategy.normalize(object.clone()),
        // pods/binding's body kind.
        None if kind == "Binding" => crate::apiserver::kinds::typed::roundtrip::<
            k8s_openapi::api::core::v1::Binding,
        >(object.clone()),
        // Kinds not served yet (Deployment) and meta kinds stay as they are.
        None => Ok((object.clone(), Vec::new())),
    }
    .expect("typed");
    without_nulls(&v)
}

#[test]
fn every_served_kind_round_trips_json_protobuf_json() {
    for object in served_objects() {
        let expected = normalised(&object);
        let bytes = encode_object(&expected).unwrap_or_else(|e| panic!("{}: {e}", object["kind"]));
        assert!(bytes.starts_with(MAGIC));
        let decoded = decode_body(&bytes).unwrap_or_else(|e| panic!("{}: {e}", object["kind"]));
        assert_eq!(decoded, expected, "{} round trip", object["kind"]);
        // And once more: the encoding is stable.
        assert_eq!(encode_object(&decoded).expect("re-encode"), bytes);
    }
}

#[test]
fn pointer_zeros_and_false_survive_the_round_trip() {
    let mut deployment = served_objects()[11].clone();
    assert_eq!(deployment["kind"], "Deployment");
    deployment["spec"]["paused"] = json!(false);
    let decoded = decode_body(&encode_object(&deployment).expect("encode")).expect("decode");
    assert_eq!(decoded["spec"]["replicas"], 0);
    assert_eq!(
        decoded["spec"]["paused"],
        json!(null),
        "paused is a plain bool: omitempty"
    );
    assert_eq!(
        decoded["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        0
    );
    assert_eq!(decoded["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 0);
    assert_eq!(decoded["status"]["collisionCount"], 0);
    let pod = decode_body(&encode_object(&realistic_pod(0)).expect("encode")).expect("decode");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(pod["spec"]["priority"], 0);
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["runAsUser"],
        0
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["restartCount"], 0,
        "no omitempty"
    );
    assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1Gi");
    assert_eq!(
        pod["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"],
        80
    );
    assert_eq!(
        pod["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
}

#[test]
fn lists_encode_as_kind_list_with_items() {
    let items: Vec<Value> = (0..3)
        .map(|i| {
            let mut p = normalised(&realistic_pod(i));
            let m = p.as_object_mut().expect("object");
            m.remove("kind");
            m.remove("apiVersion");
            p
        })
        .collect();
    let list = json!({"kind": "PodList", "apiVersion": "v1",
                      "metadata": {"resourceVersion": "42", "continue": "abc", "remainingItemCount": 7},
                      "items": items});
    let decoded = decode_body(&encode_object(&list).expect("encode")).expect("decode");
    assert_eq!(decoded, list);
    for kind in [
        "Namespace",
        "Node",
        "Event",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
    ] {
        assert!(
            is_supported_kind("v1", &format!("{kind}List")),
            "{kind}List"
        );
    }
    assert!(is_supported_kind("coordination.k8s.io/v1", "LeaseList"));
    assert!(is_supported_kind("events.k8s.io/v1", "EventList"));
    assert!(is_supported_kind("apps/v1", "DeploymentList"));
    assert!(is_supported_kind(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBindingList"
    ));
    assert!(
        is_supported_kind("apps/v1", "DeleteOptions"),
        "meta kinds in every group"
    );
    assert!(is_supported_kind(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition"
    ));
    assert!(
        !is_supported_kind("meta.k8s.io/v1", "Table"),
        "upstream's Table has no protobuf"
    );
    assert!(!is_supported_kind("example.com/v1", "Widget"));
}

#[test]
fn envelope_and_watch_event_bytes_are_upstreams() {
    let ns = json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "a"}});
    let body = encode_object(&ns).expect("encode");
    // magic, Unknown{1 typeMeta{1 "v1", 2 "Namespace"}, 2 raw{1 metadata{1 "a"}}, 3 "", 4 ""}
    let mut want = MAGIC.to_vec();
    want.extend_from_slice(
        b"\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x05\x0a\x03\x0a\x01a\x1a\x00\x22\x00",
    );
    assert_eq!(body, want);

    let frame = encode_watch_event("ADDED", &ns).expect("event");
    let len = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, frame.len() - 4);
    // WatchEvent{1 "ADDED", 2 RawExtension{1 raw = the envelope}}: no magic outside.
    let mut event = b"\x0a\x05ADDED\x12".to_vec();
    let mut raw = vec![0x0a];
    wire::put_varint(&mut raw, body.len() as u64);
    raw.extend_from_slice(&body);
    wire::put_varint(&mut event, raw.len() as u64);
    event.extend_from_slice(&raw);
    assert_eq!(&frame[4..], &event[..]);
}

#[test]
fn long_nested_messages_get_multi_byte_lengths() {
    let big = "x".repeat(70_000);
    let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "big"},
                    "data": {"blob": big}});
    let decoded = decode_body(&encode_object(&cm).expect("encode")).expect("decode");
    assert_eq!(decoded, cm);
}

#[test]
fn recorded_kubectl_bodies_survive_decode_encode_decode() {
    for (command, body, _) in KUBECTL_BODIES {
        let first = decode_body(&hex(body)).expect("decode");
        let again = decode_body(&encode_object(&first).expect("encode")).expect("decode");
        // Go always writes non-pointer zero scalars; the re-encoding leaves them out, so
        // only the kept ones can differ: compare what both print.
        assert_eq!(again, first, "kubectl {command}");
    }
}

#[test]
fn go_durations_and_micro_times() {
    use super::wellknown::{go_duration, parse_go_duration};
    for (nanos, text) in [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_500_000_000, "1.5s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_000, "1h2m3s"),
        (-5_000_000_000, "-5s"),
    ] {
        assert_eq!(go_duration(nanos), text);
        assert_eq!(parse_go_duration(text), Some(nanos), "{text}");
    }
    assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
    assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
    assert_eq!(parse_go_duration("5"), None);
    assert_eq!(parse_go_duration(""), None);
    assert_eq!(parse_go_duration("1x"), None);

    let lease = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": "l"},
                       "spec": {"renewTime": "2025-01-02T03:04:05.123456789+01:00"}});
    let decoded = decode_body(&encode_object(&lease).expect("encode")).expect("decode");
    assert_eq!(decoded["spec"]["renewTime"], "2025-01-02T02:04:05.123456Z");
    let pod = json!({"kind": "Pod", "apiVersion": "v1",
                     "metadata": {"name": "p", "creationTimestamp": "2025-01-02T03:04:05.9Z"}});
    let decoded = decode_body(&encode_object(&pod).expect("encode")).expect("decode");
    assert_eq!(
        decoded["metadata"]["creationTimestamp"],
        "2025-01-02T03:04:05Z"
    );
}

#[test]
fn encoding_drops_unknown_fields_and_rejects_mistyped_ones() {
    let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "bogus": 1},
                     "spec": {"nope": {"x": 1}}, "extra": true});
    let decoded = decode_body(&encode_object(&pod).expect("encode")).expect("decode");
    assert_eq!(
        decoded,
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": {}})
    );
    for bad in [
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": 5}}),
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"generation": "x"}}),
        json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": {"a": 1}}}),
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"creationTimestamp": "yesterday"}}),
        json!({"kind": "Secret", "apiVersion": "v1", "data": {"k": "not base64!"}}),
        json!({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": 3_000_000_000_i64}}),
    ] {
        let err = encode_object(&bad).expect_err("mistyped");
        assert!(matches!(err, ProtobufError::Encode { .. }), "{err}");
    }
    let err = encode_object(&json!({"kind": "Widget", "apiVersion": "example.com/v1"}))
        .expect_err("kind");
    assert!(err.is_unsupported_media_type());
    assert!(encode_object(&json!([1, 2])).is_err());
}

#[test]
fn hostile_bytes_never_panic() {
    // Deterministic mutations of every recorded body: flipped bytes, cut lengths, and
    // inflated varints must all end in Ok or Err.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut bodies: Vec<Vec<u8>> = KUBECTL_BODIES.iter().map(|(_, b, _)| hex(b)).collect();
    bodies.push(encode_object(&realistic_pod(3)).expect("encode"));
    for body in &bodies {
        for _ in 0..300 {
            let mut mutated = body.clone();
            for _ in 0..1 + next() % 4 {
                let at = 4 + (next() as usize) % (mutated.len() - 4);
                mutated[at] = next() as u8;
            }
            let _ = decode_body(&mutated);
        }
    }
    // A pod nested in itself through RawExtension-like envelopes is bounded by depth.
    let mut deep = Pb::new().str(1, "x");
    for _ in 0..200 {
        deep = Pb::new().msg(1, deep);
    }
    assert!(decode_body(&envelope("v1", "Status", Pb::new().msg(6, deep))).is_err());
    // A length far past the end.
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(b"\x12\xff\xff\xff\xff\x0f");
    assert!(matches!(
        decode_body(&body),
        Err(ProtobufError::Truncated(_))
    ));
}

#[test]
fn nesting_is_bounded() {
    let schema = schema();
    let ns = schema
        .message("k8s.io.api.core.v1.Namespace")
        .expect("Namespace");
    let err = decode::decode_message(schema, ns, &[], MAX_DEPTH).expect_err("too deep");
    assert!(matches!(err, ProtobufError::TooDeep));
    assert!(decode::decode_message(schema, ns, &[], MAX_DEPTH - 1).is_ok());
}

#[test]
fn schema_and_facts_agree() {
    use super::schema::{Card, Special, Ty};
    let schema = schema();
    assert!(
        schema.messages.len() > 1000,
        "every group's messages are loaded"
    );
    for m in &schema.messages {
        for (i, f) in m.fields.iter().enumerate() {
            if let Ty::Msg(inner) = f.ty {
                assert!((inner as usize) < schema.messages.len());
            }
            if f.inline {
                assert!(
                    matches!((f.ty, f.card), (Ty::Msg(_), Card::One)),
                    "{}.{}",
                    m.name,
                    f.json
                );
            }
            for g in &m.fields[i + 1..] {
                assert_ne!(f.number, g.number, "{}", m.name);
                if !f.inline && !g.inline && m.special == Special::None {
                    assert_ne!(f.json, g.json, "{}: duplicate JSON name", m.name);
                }
            }
        }
    }
    // Every fact names a message and field that exist (the file matches the protos).
    for (message, fields) in facts::parse(facts::FACTS_TXT) {
        let index = schema
            .message(&message)
            .unwrap_or_else(|| panic!("{message}"));
        let m = &schema.messages[index as usize];
        for number in fields.keys() {
            assert!(
                m.fields.iter().any(|f| f.number == *number),
                "{message} {number}"
            );
        }
    }
    // The facts that matter most.
    let field = |msg: &str, json: &str| {
        let m = &schema.messages[schema.message(msg).expect(msg) as usize];
        m.fields
            .iter()
            .find(|f| f.json == json)
            .unwrap_or_else(|| panic!("{msg}.{json}"))
            .clone()
    };
    assert!(field("k8s.io.api.apps.v1.DeploymentSpec", "replicas").keep);
    assert!(field("k8s.io.api.core.v1.PodSpec", "automountServiceAccountToken").keep);
    assert!(
        field(
            "k8s.io.api.core.v1.PodSpec",
            "terminationGracePeriodSeconds"
        )
        .keep
    );
    assert!(field("k8s.io.api.core.v1.ContainerPort", "containerPort").keep);
    assert!(!field("k8s.io.api.core.v1.PodSpec", "hostNetwork").keep);
    assert!(field("k8s.io.api.core.v1.Volume", "volumeSource").inline);
    assert!(field("k8s.io.api.core.v1.Probe", "handler").inline);
    assert_eq!(
        field("k8s.io.api.authentication.v1.BoundObjectReference", "uid").number,
        4
    );
}

#[test]
fn pods_with_the_service_account_volume_encode() {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "rkind/host"}]}});
    crate::apiserver::admission::serviceaccount::mount_api_access(&mut pod);
    let bytes = encode_object(&pod).expect("encodes");
    let back = decode_body(&bytes).expect("decodes");
    assert_eq!(back["spec"]["volumes"], pod["spec"]["volumes"]);
}
