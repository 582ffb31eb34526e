// Java-client side of the Moldau compatibility suite (kafka-clients 3.9.x).
//
// Compiled at run time by compat/harness/java.py against compat/.deps/jars. Every
// byte string crosses the process boundary hex-encoded ("-" = null), one record a
// line, tab-separated, so the Python harness needs no JSON library on this side.
//
//   admin-create  BOOTSTRAP TOPIC PARTITIONS           create, then describe: "partitions N"
//   produce       BOOTSTRAP INFILE [k=v ...]            lines: topic ts keyhex valuehex headers
//                                                       out:   "ack IDX partition offset ts" | "err IDX msg"
//   consume       BOOTSTRAP TOPIC[,TOPIC] [k=v ...]     out:   "rec topic partition offset ts tstype keyhex valuehex headers"
//   list-offsets  BOOTSTRAP TOPIC                       Admin listOffsets: "lo P earliest latest maxts_offset maxts_ts"
//   offsets-for-times BOOTSTRAP TOPIC P:TS ...          out:   "oft P TS offset|null ts|null"
//   sustain       BOOTSTRAP TOPIC STOPFILE [k=v ...]    produce until STOPFILE exists; "ack ..." lines as acks arrive
//   group-consume BOOTSTRAP TOPIC STOPFILE [k=v ...]    subscribe with group.id (in k=v), commitSync after each poll,
//                                                       until STOPFILE exists, then close (leave the group).
//                                                       out: "assignment P,P,.." on every change, "rec P offset" per record
//   txn-script    BOOTSTRAP SCRIPTFILE                  transactional producers driven by a script, one op a line,
//                                                       tab-separated: "new NAME k=v..", "init|begin|flush|commit|abort|close NAME",
//                                                       "send NAME IDX TOPIC PARTITION|- KEYHEX VALUEHEX"
//                                                       out: "op LINE NAME OP ok MS" | "op LINE NAME OP exc CLASS CAUSECLASS|- MS",
//                                                            "ack IDX topic partition offset" | "senderr IDX CLASS CAUSECLASS|- async|sync"
//                                                       further ops: "send" takes an optional 8th field TS (record timestamp),
//                                                       "pid NAME" prints "pid NAME PRODUCERID EPOCH" (the producer's own view, by
//                                                       reflection), "admin - CMD" runs one txn-admin CMD (below) with an Admin client,
//                                                       "halt -" ends the JVM at once: no producer is closed, so an open
//                                                       transaction stays open (a producer that died)
//   txn-admin     BOOTSTRAP CMD...                      transaction admin calls (Admin, request.timeout.ms=20000), one CMD an
//                                                       argument, TAG = the CMD itself (an optional "LABEL@" prefix keeps
//                                                       two runs of one CMD apart); ends with "done":
//                                                       list[:state=S,..][:pid=P,..][:duration=MS]
//                                                                                      "list TAG TXNID PID STATE COORD".., "listed TAG N"
//                                                       describe:ID,..                 "desc TAG ID ok COORD STATE PID EPOCH TIMEOUT START|- T-P,..|-"
//                                                                                      | "desc TAG ID exc CLASS CAUSE"
//                                                       producers:TOPIC:P              "prod TAG PID EPOCH LASTSEQ LASTTS COORDEPOCH|- TXNSTART|-"..,
//                                                                                      "producers TAG N" | "producers TAG exc CLASS CAUSE"
//                                                       offsets:TOPIC:P                "lo TAG LATEST_READ_COMMITTED LATEST_READ_UNCOMMITTED"
//                                                       abort-start:TOPIC:P:OFFSET     as kafka-transactions abort --start-offset: the spec from
//                                                                                      describeProducers (coordinator epoch or 0): "spec TAG PID EPOCH
//                                                                                      COORDEPOCH" | "spec TAG none", then "abort TAG ok|exc CLASS CAUSE"
//                                                       abort:TOPIC:P:PID:EPOCH:CEPOCH "abort TAG ok" | "abort TAG exc CLASS CAUSE"
//                                                       fence:ID,..                    "fence TAG ID ok PID EPOCH" | "fence TAG ID exc CLASS CAUSE"
//   cluster-describe BOOTSTRAP                          Admin describeCluster + describeMetadataQuorum, one fact a line:
//                                                       "cluster-id ID", "controller ID", "nodes [..]", "quorum-leader ID", ...
//   admin-session BOOTSTRAP [k=v ...]                   one Admin client driven from stdin, one command a line (words
//                                                       separated by spaces); each answer ends with the line "end", a
//                                                       failed call with "exc CLASS CAUSECLASS|-" before it:
//                                                       create TOPIC PARTITIONS RF [k=v ..]        "created TOPIC"
//                                                       create-at TOPIC R,R.. [R,R.. ..] [k=v ..]   explicit replicas of partition 0, 1, ..
//                                                       describe TOPIC [TOPIC ..]   "part TOPIC P LEADER|-1 R,R.. ISR,ISR..|-" a partition
//                                                       elect preferred|unclean TOPIC:P [TOPIC:P ..]
//                                                                                   "elect TOPIC P ok" | "elect TOPIC P exc CLASS CAUSE"
//                                                       reassign TOPIC:P:B,B..|TOPIC:P:cancel [..]  alterPartitionReassignments (cancel:
//                                                                                   Optional.empty()): "reassign TOPIC P ok|exc CLASS CAUSE"
//                                                       list-reassign [TOPIC:P ..]  "moving TOPIC P REPLICAS ADDING|- REMOVING|-" ..,
//                                                                                   "listed N"
//                                                       quorum                      "quorum LEADER EPOCH HW V,V.. O,O..|-", "voter ID LEO" ..
//                                                       cluster                     "cluster CONTROLLER N,N.."
//   txn-ctp       BOOTSTRAP IN OUT GROUP TXNID ABORT_AT [c.k=v|p.k=v ...]
//                                                       consume-transform-produce: a group consumer (read_committed) on IN,
//                                                       a transactional producer writing "out:"+value (same key) to OUT and the
//                                                       positions with sendOffsetsToTransaction, one transaction per poll; the
//                                                       ABORT_AT-th transaction is flushed, then aborted and the consumer rewound
//                                                       to its committed offsets. Ends when the committed offsets reach IN's end.
//                                                       out: "end P:O,..", "rec TXN P OFFSET VALUEHEX", "txn TXN commit|abort N P:O,..",
//                                                            "committed TXN P:O,..", "final P:O,..", "done"
//
// headers: "-" for none, else comma-separated keyhex=valuehex (valuehex "-" = null value).
import java.io.*;
import java.nio.file.*;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.header.*;
import org.apache.kafka.common.header.internals.*;
import org.apache.kafka.common.serialization.*;

public class Compat {
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true);

    static String hex(byte[] b) {
        if (b == null) return "-";
        if (b.length == 0) return "";
        StringBuilder sb = new StringBuilder(b.length * 2);
        for (byte x : b) sb.append(String.format("%02x", x & 0xff));
        return sb.toString();
    }

    static byte[] unhex(String s) {
        if (s.equals("-")) return null;
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return b;
    }

    static String headersOut(Headers hs) {
        StringBuilder sb = new StringBuilder();
        for (Header h : hs) {
            if (sb.length() > 0) sb.append(',');
            sb.append(hex(h.key().getBytes(java.nio.charset.StandardCharsets.UTF_8))).append('=').append(hex(h.value()));
        }
        return sb.length() == 0 ? "-" : sb.toString();
    }

    static List<Header> headersIn(String s) {
        List<Header> out = new ArrayList<>();
        if (s.equals("-") || s.isEmpty()) return out;
        for (String kv : s.split(",")) {
            String[] p = kv.split("=", 2);
            out.add(new RecordHeader(new String(unhex(p[0]), java.nio.charset.StandardCharsets.UTF_8), unhex(p[1])));
        }
        return out;
    }

    static Properties props(String bootstrap, String[] args, int from) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        for (int i = from; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            p.put(kv[0], kv[1]);
        }
        // An Admin talks to the controllers (KIP-919) or to the brokers, never both.
        if (p.containsKey("bootstrap.controllers")) p.remove("bootstrap.servers");
        return p;
    }

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "admin-create": adminCreate(args); break;
            case "produce": produce(args); break;
            case "consume": consume(args); break;
            case "offsets-for-times": offsetsForTimes(args); break;
            case "sustain": sustain(args); break;
            case "list-offsets": listOffsets(args); break;
            case "group-consume": groupConsume(args); break;
            case "txn-script": txnScript(args); break;
            case "txn-ctp": txnCtp(args); break;
            case "txn-admin": txnAdmin(args); break;
            case "cluster-describe": clusterDescribe(args); break;
            case "admin-session": adminSession(args); break;
            case "raft-voters": raftVoters(args); break;
            default: throw new IllegalArgumentException("unknown command " + args[0]);
        }
        System.exit(0);
    }

    static void adminCreate(String[] a) throws Exception {
        Properties p = props(a[1], a, 4);
        try (Admin admin = Admin.create(p)) {
            NewTopic t = new NewTopic(a[2], Integer.parseInt(a[3]), (short) 1);
            admin.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
            // the topic must become visible to metadata
            long deadline = System.currentTimeMillis() + 15000;
            while (true) {
                try {
                    TopicDescription d = admin.describeTopics(List.of(a[2])).allTopicNames().get(10, TimeUnit.SECONDS).get(a[2]);
                    OUT.println("partitions " + d.partitions().size());
                    break;
                } catch (ExecutionException e) {
                    if (System.currentTimeMillis() > deadline) throw e;
                    Thread.sleep(200);
                }
            }
            // creating it again must fail with TopicExistsException
            try {
                admin.createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
                OUT.println("recreate ok");
            } catch (ExecutionException e) {
                OUT.println("recreate " + e.getCause().getClass().getSimpleName());
            }
        }
    }

    /** Admin describeCluster and describeMetadataQuorum, one fact per line. */
    static void clusterDescribe(String[] a) throws Exception {
        Properties p = props(a[1], a, 2);
        try (Admin admin = Admin.create(p)) {
            DescribeClusterResult c = admin.describeCluster();
            OUT.println("cluster-id " + c.clusterId().get(30, TimeUnit.SECONDS));
            Node controller = c.controller().get(30, TimeUnit.SECONDS);
            OUT.println("controller " + (controller == null ? -1 : controller.id()));
            List<Integer> nodes = new ArrayList<>();
            List<String> endpoints = new ArrayList<>();
            for (Node n : c.nodes().get(30, TimeUnit.SECONDS)) {
                nodes.add(n.id());
                endpoints.add(n.id() + "@" + n.host() + ":" + n.port());
            }
            Collections.sort(nodes);
            Collections.sort(endpoints);
            OUT.println("nodes " + nodes);
            OUT.println("endpoints " + String.join(",", endpoints));
            QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS);
            OUT.println("quorum-leader " + q.leaderId());
            OUT.println("quorum-epoch " + q.leaderEpoch());
            OUT.println("quorum-hw " + q.highWatermark());
            List<Integer> voters = new ArrayList<>();
            for (QuorumInfo.ReplicaState v : q.voters()) voters.add(v.replicaId());
            Collections.sort(voters);
            OUT.println("quorum-voters " + voters);
            for (QuorumInfo.ReplicaState v : q.voters()) {
                OUT.println("voter " + v.replicaId() + " leo " + v.logEndOffset());
            }
        }
    }

    /**
     * KIP-853 through the Admin: raft-voters BOOTSTRAP OP... where BOOTSTRAP is
     * bootstrap.servers, or controllers:HOST:PORT for bootstrap.controllers, and each OP is
     * "add ID DIR HOST PORT", "remove ID DIR" or "voters". One line an OP: "ok", "err
     * ExceptionName" or "voters [ids]".
     */
    static void raftVoters(String[] a) throws Exception {
        Properties p = new Properties();
        if (a[1].startsWith("controllers:")) p.put("bootstrap.controllers", a[1].substring(12));
        else p.put("bootstrap.servers", a[1]);
        try (Admin admin = Admin.create(p)) {
            for (int i = 2; i < a.length; i++) {
                String[] op = a[i].split(" ");
                try {
                    switch (op[0]) {
                        case "add":
                            get(admin.addRaftVoter(Integer.parseInt(op[1]), Uuid.fromString(op[2]),
                                Collections.singleton(new RaftVoterEndpoint("CONTROLLER", op[3], Integer.parseInt(op[4])))).all());
                            OUT.println("ok");
                            break;
                        case "remove":
                            get(admin.removeRaftVoter(Integer.parseInt(op[1]), Uuid.fromString(op[2])).all());
                            OUT.println("ok");
                            break;
                        case "voters": {
                            QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
                            List<Integer> voters = new ArrayList<>();
                            for (QuorumInfo.ReplicaState v : q.voters()) voters.add(v.replicaId());
                            Collections.sort(voters);
                            OUT.println("voters " + voters);
                            break;
                        }
                        default: throw new IllegalArgumentException(op[0]);
                    }
                } catch (ExecutionException e) {
                    OUT.println("err " + e.getCause().getClass().getSimpleName());
                }
            }
        }
    }

    // ---------------------------------------------------------------- replication admin (admin-session)

    static String ids(Collection<Node> nodes) {
        StringBuilder sb = new StringBuilder();
        for (Node n : nodes) { if (sb.length() > 0) sb.append(','); sb.append(n.id()); }
        return sb.length() == 0 ? "-" : sb.toString();
    }

    static String ints(Collection<Integer> xs) {
        StringBuilder sb = new StringBuilder();
        for (int x : xs) { if (sb.length() > 0) sb.append(','); sb.append(x); }
        return sb.length() == 0 ? "-" : sb.toString();
    }

    static List<Integer> parseInts(String s) {
        List<Integer> out = new ArrayList<>();
        for (String x : s.split(",")) out.add(Integer.parseInt(x));
        return out;
    }

    static TopicPartition parseTp(String s) {
        int i = s.lastIndexOf(':');
        return new TopicPartition(s.substring(0, i), Integer.parseInt(s.substring(i + 1)));
    }

    /** One Admin client for the whole session (it lives through broker failures), commands from stdin. */
    static void adminSession(String[] a) throws Exception {
        Properties p = props(a[1], a, 2);
        p.putIfAbsent("request.timeout.ms", "10000");
        p.putIfAbsent("default.api.timeout.ms", "20000");
        p.putIfAbsent("client.id", "compat-admin-session");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        try (Admin admin = Admin.create(p)) {
            String line;
            while ((line = in.readLine()) != null) {
                line = line.trim();
                if (line.isEmpty()) continue;
                if (line.equals("quit")) break;
                try {
                    sessionCmd(admin, line.split(" +"));
                } catch (IllegalArgumentException e) {
                    throw e;
                } catch (Exception e) {
                    OUT.println("exc " + excName(e));
                    System.err.println(line + ": " + e);
                }
                OUT.println("end");
            }
        }
    }

    static void sessionCmd(Admin admin, String[] f) throws Exception {
        switch (f[0]) {
            case "create":
            case "create-at": {
                Map<String, String> configs = new HashMap<>();
                Map<Integer, List<Integer>> assignment = new HashMap<>();
                int rest = f[0].equals("create") ? 4 : 2;
                for (int i = rest; i < f.length; i++) {
                    if (f[i].contains("=")) {
                        String[] kv = f[i].split("=", 2);
                        configs.put(kv[0], kv[1]);
                    } else {
                        assignment.put(assignment.size(), parseInts(f[i]));
                    }
                }
                NewTopic t = f[0].equals("create")
                    ? new NewTopic(f[1], Integer.parseInt(f[2]), Short.parseShort(f[3]))
                    : new NewTopic(f[1], assignment);
                t.configs(configs);
                get(admin.createTopics(List.of(t)).all());
                OUT.println("created " + f[1]);
                break;
            }
            case "describe": {
                List<String> topics = Arrays.asList(f).subList(1, f.length);
                Map<String, TopicDescription> ds = get(admin.describeTopics(topics).allTopicNames());
                for (String topic : topics) {
                    for (TopicPartitionInfo pi : ds.get(topic).partitions()) {
                        OUT.println("part " + topic + " " + pi.partition() + " " + (pi.leader() == null ? -1 : pi.leader().id())
                            + " " + ids(pi.replicas()) + " " + ids(pi.isr()));
                    }
                }
                break;
            }
            case "elect": {
                ElectionType type = f[1].equals("preferred") ? ElectionType.PREFERRED : ElectionType.UNCLEAN;
                Set<TopicPartition> tps = new LinkedHashSet<>();
                for (int i = 2; i < f.length; i++) tps.add(parseTp(f[i]));
                Map<TopicPartition, Optional<Throwable>> r = get(admin.electLeaders(type, tps).partitions());
                for (TopicPartition tp : tps) {
                    Optional<Throwable> e = r.get(tp);
                    OUT.println("elect " + tp.topic() + " " + tp.partition() + " "
                        + (e == null ? "missing" : e.isPresent() ? "exc " + excName(e.get()) : "ok"));
                }
                break;
            }
            case "reassign": {
                Map<TopicPartition, Optional<NewPartitionReassignment>> m = new LinkedHashMap<>();
                for (int i = 1; i < f.length; i++) {
                    int c = f[i].lastIndexOf(':');
                    TopicPartition tp = parseTp(f[i].substring(0, c));
                    String target = f[i].substring(c + 1);
                    m.put(tp, target.equals("cancel") ? Optional.empty() : Optional.of(new NewPartitionReassignment(parseInts(target))));
                }
                Map<TopicPartition, KafkaFuture<Void>> r = admin.alterPartitionReassignments(m).values();
                for (TopicPartition tp : m.keySet()) {
                    String res;
                    try {
                        get(r.get(tp));
                        res = "ok";
                    } catch (ExecutionException e) {
                        res = "exc " + excName(e);
                    }
                    OUT.println("reassign " + tp.topic() + " " + tp.partition() + " " + res);
                }
                break;
            }
            case "list-reassign": {
                Set<TopicPartition> tps = new LinkedHashSet<>();
                for (int i = 1; i < f.length; i++) tps.add(parseTp(f[i]));
                ListPartitionReassignmentsResult r = tps.isEmpty() ? admin.listPartitionReassignments() : admin.listPartitionReassignments(tps);
                Map<TopicPartition, PartitionReassignment> m = get(r.reassignments());
                for (Map.Entry<TopicPartition, PartitionReassignment> e : m.entrySet()) {
                    PartitionReassignment pr = e.getValue();
                    OUT.println("moving " + e.getKey().topic() + " " + e.getKey().partition() + " " + ints(pr.replicas()) + " "
                        + ints(pr.addingReplicas()) + " " + ints(pr.removingReplicas()));
                }
                OUT.println("listed " + m.size());
                break;
            }
            case "quorum": {
                QuorumInfo q = get(admin.describeMetadataQuorum().quorumInfo());
                List<Integer> voters = new ArrayList<>(), observers = new ArrayList<>();
                for (QuorumInfo.ReplicaState v : q.voters()) voters.add(v.replicaId());
                for (QuorumInfo.ReplicaState o : q.observers()) observers.add(o.replicaId());
                Collections.sort(voters);
                Collections.sort(observers);
                OUT.println("quorum " + q.leaderId() + " " + q.leaderEpoch() + " " + q.highWatermark() + " " + ints(voters) + " " + ints(observers));
                for (QuorumInfo.ReplicaState v : q.voters()) OUT.println("voter " + v.replicaId() + " " + v.logEndOffset());
                break;
            }
            case "cluster": {
                DescribeClusterResult c = admin.describeCluster();
                Node controller = get(c.controller());
                List<Integer> nodes = new ArrayList<>();
                for (Node n : get(c.nodes())) nodes.add(n.id());
                Collections.sort(nodes);
                OUT.println("cluster " + (controller == null ? -1 : controller.id()) + " " + ints(nodes));
                break;
            }
            default: throw new IllegalArgumentException("unknown admin-session command " + f[0]);
        }
    }

    static void produce(String[] a) throws Exception {
        Properties p = props(a[1], a, 3);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        List<String> lines = Files.readAllLines(Paths.get(a[2]));
        String[] results = new String[lines.size()];
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < lines.size(); i++) {
                String[] f = lines.get(i).split("\t", -1);
                Long ts = f[1].equals("-") ? null : Long.parseLong(f[1]);
                Integer part = f.length > 5 && !f[5].equals("-") ? Integer.parseInt(f[5]) : null;
                ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(f[0], part, ts, unhex(f[2]), unhex(f[3]), headersIn(f[4]));
                final int idx = i;
                fs.add(prod.send(r, (md, ex) -> {
                    results[idx] = ex == null
                        ? "ack " + idx + " " + md.partition() + " " + md.offset() + " " + md.timestamp()
                        : "err " + idx + " " + ex.toString().replace('\n', ' ');
                }));
            }
            prod.flush();
            for (Future<RecordMetadata> f : fs) {
                try { f.get(60, TimeUnit.SECONDS); } catch (ExecutionException e) { /* reported in callback */ }
            }
        }
        for (String r : results) OUT.println(r == null ? "err ? no callback" : r);
    }

    static void consume(String[] a) throws Exception {
        Properties p = props(a[1], a, 3);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.putIfAbsent("enable.auto.commit", "false");
        p.putIfAbsent("auto.offset.reset", "earliest");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (String topic : a[2].split(","))
                for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(30))) tps.add(new TopicPartition(topic, pi.partition()));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            long deadline = System.currentTimeMillis() + 60000;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) if (c.position(tp, Duration.ofSeconds(30)) < end.get(tp)) done = false;
                if (done) break;
                if (System.currentTimeMillis() > deadline) {
                    System.err.println("timeout: positions did not reach end offsets " + end);
                    System.exit(3);
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    OUT.println("rec " + r.topic() + " " + r.partition() + " " + r.offset() + " " + r.timestamp() + " " + r.timestampType().name
                        + " " + hex(r.key()) + " " + hex(r.value()) + " " + headersOut(r.headers()));
                }
            }
        }
    }

    static void groupConsume(String[] a) throws Exception {
        Properties p = props(a[1], a, 4);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.putIfAbsent("enable.auto.commit", "false");
        p.putIfAbsent("auto.offset.reset", "earliest");
        Path stop = Paths.get(a[3]);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            c.subscribe(List.of(a[2]));
            String last = null;
            while (!Files.exists(stop)) {
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : recs) OUT.println("rec " + r.partition() + " " + r.offset());
                if (!recs.isEmpty()) c.commitSync();
                List<Integer> parts = new ArrayList<>();
                for (TopicPartition tp : c.assignment()) parts.add(tp.partition());
                Collections.sort(parts);
                StringBuilder sb = new StringBuilder();
                for (int x : parts) { if (sb.length() > 0) sb.append(','); sb.append(x); }
                String now = sb.length() == 0 ? "-" : sb.toString();
                if (!now.equals(last)) { OUT.println("assignment " + now); last = now; }
            }
        }
    }

    static void offsetsForTimes(String[] a) throws Exception {
        Properties p = props(a[1], new String[0], 0);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("request.timeout.ms", "10000");
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            for (int i = 3; i < a.length; i++) {
                String[] pt = a[i].split(":");
                TopicPartition tp = new TopicPartition(a[2], Integer.parseInt(pt[0]));
                long ts = Long.parseLong(pt[1]);
                try {
                    Map<TopicPartition, OffsetAndTimestamp> m = c.offsetsForTimes(Map.of(tp, ts), Duration.ofSeconds(15));
                    OffsetAndTimestamp o = m.get(tp);
                    OUT.println("oft " + pt[0] + " " + ts + " " + (o == null ? "null null" : o.offset() + " " + o.timestamp()));
                } catch (Exception e) {
                    OUT.println("oft " + pt[0] + " " + ts + " ERR:" + e.getClass().getSimpleName() + " -");
                }
            }
        }
    }

    static String lo(Admin admin, TopicPartition tp, OffsetSpec spec, boolean withTs) {
        try {
            ListOffsetsResult.ListOffsetsResultInfo r = admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get(15, TimeUnit.SECONDS);
            return withTs ? r.offset() + " " + r.timestamp() : String.valueOf(r.offset());
        } catch (Exception e) {
            Throwable c = e instanceof ExecutionException ? e.getCause() : e;
            String err = "ERR:" + c.getClass().getSimpleName();
            return withTs ? err + " " + err : err;
        }
    }

    static void listOffsets(String[] a) throws Exception {
        Properties p = props(a[1], new String[0], 0);
        p.put("default.api.timeout.ms", "15000");
        p.put("request.timeout.ms", "10000");
        try (Admin admin = Admin.create(p)) {
            TopicDescription d = admin.describeTopics(List.of(a[2])).allTopicNames().get(30, TimeUnit.SECONDS).get(a[2]);
            for (TopicPartitionInfo pi : d.partitions()) {
                TopicPartition tp = new TopicPartition(a[2], pi.partition());
                OUT.println("lo " + pi.partition() + " " + lo(admin, tp, OffsetSpec.earliest(), false) + " "
                    + lo(admin, tp, OffsetSpec.latest(), false) + " " + lo(admin, tp, OffsetSpec.maxTimestamp(), true));
            }
        }
    }

    static void sustain(String[] a) throws Exception {
        Properties p = props(a[1], a, 4);
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        String topic = a[2];
        Path stop = Paths.get(a[3]);
        AtomicLong acked = new AtomicLong(), failed = new AtomicLong();
        long sent = 0;
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p)) {
            while (!Files.exists(stop)) {
                final long idx = sent++;
                byte[] key = ("k" + (idx % 37)).getBytes();
                byte[] val = ("java-" + idx).getBytes();
                try {
                    prod.send(new ProducerRecord<>(topic, key, val), (md, ex) -> {
                        if (ex == null) {
                            acked.incrementAndGet();
                            OUT.println("ack " + idx + " " + md.partition() + " " + md.offset() + " " + md.timestamp());
                        } else {
                            failed.incrementAndGet();
                            OUT.println("err " + idx + " " + ex.getClass().getSimpleName());
                        }
                    });
                } catch (Exception e) {
                    OUT.println("err " + idx + " send " + e.getClass().getSimpleName());
                }
                if (idx % 20 == 19) Thread.sleep(5);
            }
            // bounded: whatever is not acknowledged 30s after the stop is failed by close()
            prod.close(Duration.ofSeconds(30));
        }
        OUT.println("done sent=" + sent + " acked=" + acked.get() + " failed=" + failed.get());
    }

    static String excName(Throwable t) {
        if (t instanceof ExecutionException && t.getCause() != null) t = t.getCause();
        Throwable c = t.getCause();
        return t.getClass().getSimpleName() + " " + (c == null || c == t ? "-" : c.getClass().getSimpleName());
    }

    static void txnScript(String[] a) throws Exception {
        Map<String, KafkaProducer<byte[], byte[]>> prods = new HashMap<>();
        Admin[] admin = new Admin[1];  // created by the first "admin" op
        List<String> lines = Files.readAllLines(Paths.get(a[2]));
        try {
            for (int n = 0; n < lines.size(); n++) {
                String[] f = lines.get(n).split("\t", -1);
                if (f[0].isEmpty()) continue;
                String op = f[0], name = f[1];
                long t0 = System.nanoTime();
                String res;
                try {
                    switch (op) {
                        case "new": {
                            Properties p = props(a[1], f, 2);
                            p.put("key.serializer", ByteArraySerializer.class.getName());
                            p.put("value.serializer", ByteArraySerializer.class.getName());
                            p.put("client.id", name);
                            prods.put(name, new KafkaProducer<>(p));
                            break;
                        }
                        case "init": prods.get(name).initTransactions(); break;
                        case "begin": prods.get(name).beginTransaction(); break;
                        case "flush": prods.get(name).flush(); break;
                        case "commit": prods.get(name).commitTransaction(); break;
                        case "abort": prods.get(name).abortTransaction(); break;
                        case "close": prods.remove(name).close(Duration.ofSeconds(10)); break;
                        case "pid": OUT.println("pid " + name + " " + producerIdAndEpoch(prods.get(name))); break;
                        case "admin":
                            if (admin[0] == null) admin[0] = txnAdminClient(a[1]);
                            adminCmd(admin[0], f[2]);
                            break;
                        case "halt":
                            OUT.flush();
                            System.err.flush();
                            Runtime.getRuntime().halt(0);
                            break;
                        case "send": {
                            final String idx = f[2];
                            Integer part = f[4].equals("-") ? null : Integer.parseInt(f[4]);
                            Long ts = f.length > 7 && !f[7].equals("-") ? Long.parseLong(f[7]) : null;
                            try {
                                prods.get(name).send(new ProducerRecord<>(f[3], part, ts, unhex(f[5]), unhex(f[6])), (md, ex) -> {
                                    OUT.println(ex == null
                                        ? "ack " + idx + " " + md.topic() + " " + md.partition() + " " + md.offset()
                                        : "senderr " + idx + " " + excName(ex) + " async");
                                });
                            } catch (Exception e) {
                                OUT.println("senderr " + idx + " " + excName(e) + " sync");
                            }
                            break;
                        }
                        default: throw new IllegalArgumentException("unknown op " + op);
                    }
                    res = "ok";
                } catch (IllegalArgumentException e) {
                    throw e;
                } catch (Exception e) {
                    res = "exc " + excName(e);
                    System.err.println("line " + (n + 1) + " " + op + " " + name + ": " + e);
                }
                OUT.println("op " + (n + 1) + " " + name + " " + op + " " + res + " " + (System.nanoTime() - t0) / 1_000_000);
            }
        } finally {
            for (KafkaProducer<byte[], byte[]> p : prods.values()) p.close(Duration.ofSeconds(5));
            if (admin[0] != null) admin[0].close(Duration.ofSeconds(5));
        }
    }

    // ---------------------------------------------------------------- transaction admin (txn-admin, txn-script "admin")

    /** The producer id and epoch a transactional producer holds (no public API: its TransactionManager). */
    static String producerIdAndEpoch(KafkaProducer<?, ?> p) throws Exception {
        java.lang.reflect.Field f = KafkaProducer.class.getDeclaredField("transactionManager");
        f.setAccessible(true);
        Object tm = f.get(p);
        java.lang.reflect.Method m = tm.getClass().getDeclaredMethod("producerIdAndEpoch");
        m.setAccessible(true);
        org.apache.kafka.common.utils.ProducerIdAndEpoch pe = (org.apache.kafka.common.utils.ProducerIdAndEpoch) m.invoke(tm);
        return pe.producerId + " " + pe.epoch;
    }

    static Admin txnAdminClient(String bootstrap) {
        Properties p = props(bootstrap, new String[0], 0);
        // fenceProducers sends this as the transaction timeout of its InitProducerId (no FenceProducersOptions.timeoutMs)
        p.put("request.timeout.ms", "20000");
        p.put("default.api.timeout.ms", "30000");
        p.put("client.id", "txn-admin");
        return Admin.create(p);
    }

    static void txnAdmin(String[] a) throws Exception {
        try (Admin admin = txnAdminClient(a[1])) {
            for (int i = 2; i < a.length; i++) adminCmd(admin, a[i]);
        }
        OUT.println("done");
    }

    static String optL(OptionalLong o) { return o.isPresent() ? String.valueOf(o.getAsLong()) : "-"; }

    static String optI(OptionalInt o) { return o.isPresent() ? String.valueOf(o.getAsInt()) : "-"; }

    static <T> T get(KafkaFuture<T> f) throws Exception { return f.get(30, TimeUnit.SECONDS); }

    static void adminCmd(Admin admin, String cmd) throws Exception {
        String[] f = cmd.substring(cmd.indexOf('@') + 1).split(":");  // "LABEL@" (optional) only tells tags apart
        switch (f[0]) {
            case "list": {
                ListTransactionsOptions o = new ListTransactionsOptions();
                for (int i = 1; i < f.length; i++) {
                    String[] kv = f[i].split("=", 2);
                    if (kv[0].equals("state")) {
                        List<TransactionState> st = new ArrayList<>();
                        for (String x : kv[1].split(",")) st.add(TransactionState.parse(x));
                        o.filterStates(st);
                    } else if (kv[0].equals("duration")) {
                        o.filterOnDuration(Long.parseLong(kv[1]));
                    } else if (kv[0].equals("pid")) {
                        List<Long> ps = new ArrayList<>();
                        for (String x : kv[1].split(",")) ps.add(Long.parseLong(x));
                        o.filterProducerIds(ps);
                    } else throw new IllegalArgumentException("list filter " + f[i]);
                }
                int n = 0;
                for (Map.Entry<Integer, Collection<TransactionListing>> e : get(admin.listTransactions(o).allByBrokerId()).entrySet())
                    for (TransactionListing t : e.getValue()) {
                        OUT.println("list " + cmd + " " + t.transactionalId() + " " + t.producerId() + " " + t.state() + " " + e.getKey());
                        n++;
                    }
                OUT.println("listed " + cmd + " " + n);
                break;
            }
            case "describe": {
                List<String> ids = List.of(f[1].split(","));
                DescribeTransactionsResult r = admin.describeTransactions(ids);
                for (String id : ids) {
                    try {
                        TransactionDescription d = get(r.description(id));
                        List<String> tps = new ArrayList<>();
                        for (TopicPartition tp : d.topicPartitions()) tps.add(tp.topic() + "-" + tp.partition());
                        Collections.sort(tps);
                        OUT.println("desc " + cmd + " " + id + " ok " + d.coordinatorId() + " " + d.state() + " " + d.producerId() + " "
                            + d.producerEpoch() + " " + d.transactionTimeoutMs() + " " + optL(d.transactionStartTimeMs()) + " "
                            + (tps.isEmpty() ? "-" : String.join(",", tps)));
                    } catch (ExecutionException e) {
                        OUT.println("desc " + cmd + " " + id + " exc " + excName(e));
                    }
                }
                break;
            }
            case "producers": {
                TopicPartition tp = new TopicPartition(f[1], Integer.parseInt(f[2]));
                try {
                    DescribeProducersResult.PartitionProducerState st = get(admin.describeProducers(List.of(tp)).partitionResult(tp));
                    for (ProducerState p : st.activeProducers())
                        OUT.println("prod " + cmd + " " + p.producerId() + " " + p.producerEpoch() + " " + p.lastSequence() + " "
                            + p.lastTimestamp() + " " + optI(p.coordinatorEpoch()) + " " + optL(p.currentTransactionStartOffset()));
                    OUT.println("producers " + cmd + " " + st.activeProducers().size());
                } catch (ExecutionException e) {
                    OUT.println("producers " + cmd + " exc " + excName(e));
                }
                break;
            }
            case "offsets": {
                TopicPartition tp = new TopicPartition(f[1], Integer.parseInt(f[2]));
                long committed = get(admin.listOffsets(Map.of(tp, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).partitionResult(tp)).offset();
                long uncommitted = get(admin.listOffsets(Map.of(tp, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).partitionResult(tp)).offset();
                OUT.println("lo " + cmd + " " + committed + " " + uncommitted);
                break;
            }
            case "abort-start":
            case "abort": {
                TopicPartition tp = new TopicPartition(f[1], Integer.parseInt(f[2]));
                AbortTransactionSpec spec = null;
                if (f[0].equals("abort")) {
                    spec = new AbortTransactionSpec(tp, Long.parseLong(f[3]), Short.parseShort(f[4]), Integer.parseInt(f[5]));
                } else {
                    // kafka-transactions.sh abort --start-offset: the producer whose open transaction starts there
                    long start = Long.parseLong(f[3]);
                    for (ProducerState p : get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers()) {
                        if (p.currentTransactionStartOffset().isPresent() && p.currentTransactionStartOffset().getAsLong() == start) {
                            spec = new AbortTransactionSpec(tp, p.producerId(), (short) p.producerEpoch(), p.coordinatorEpoch().orElse(0));
                            break;
                        }
                    }
                    if (spec == null) {
                        OUT.println("spec " + cmd + " none");
                        break;
                    }
                    OUT.println("spec " + cmd + " " + spec.producerId() + " " + spec.producerEpoch() + " " + spec.coordinatorEpoch());
                }
                try {
                    get(admin.abortTransaction(spec).all());
                    OUT.println("abort " + cmd + " ok");
                } catch (ExecutionException e) {
                    OUT.println("abort " + cmd + " exc " + excName(e));
                }
                break;
            }
            case "fence": {
                List<String> ids = List.of(f[1].split(","));
                FenceProducersResult r = admin.fenceProducers(ids);
                for (String id : ids) {
                    try {
                        long pid = get(r.producerId(id));
                        short epoch = get(r.epochId(id));
                        OUT.println("fence " + cmd + " " + id + " ok " + pid + " " + epoch);
                    } catch (ExecutionException e) {
                        OUT.println("fence " + cmd + " " + id + " exc " + excName(e));
                    }
                }
                break;
            }
            default: throw new IllegalArgumentException("unknown txn-admin command " + cmd);
        }
    }

    static String offs(Map<TopicPartition, ?> m) {
        TreeMap<Integer, String> t = new TreeMap<>();
        for (Map.Entry<TopicPartition, ?> e : m.entrySet()) {
            Object v = e.getValue();
            String s = v == null ? "null" : v instanceof OffsetAndMetadata ? String.valueOf(((OffsetAndMetadata) v).offset()) : v.toString();
            t.put(e.getKey().partition(), s);
        }
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<Integer, String> e : t.entrySet()) {
            if (sb.length() > 0) sb.append(',');
            sb.append(e.getKey()).append(':').append(e.getValue());
        }
        return sb.length() == 0 ? "-" : sb.toString();
    }

    static void txnCtp(String[] a) throws Exception {
        String in = a[2], out = a[3], group = a[4], tid = a[5];
        int abortAt = Integer.parseInt(a[6]);
        Properties cp = props(a[1], new String[0], 0), pp = props(a[1], new String[0], 0);
        cp.put("key.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("value.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("group.id", group);
        cp.put("isolation.level", "read_committed");
        cp.put("enable.auto.commit", "false");
        cp.put("auto.offset.reset", "earliest");
        pp.put("key.serializer", ByteArraySerializer.class.getName());
        pp.put("value.serializer", ByteArraySerializer.class.getName());
        pp.put("transactional.id", tid);
        for (int i = 7; i < a.length; i++) {
            String[] kv = a[i].substring(2).split("=", 2);
            (a[i].startsWith("c.") ? cp : pp).put(kv[0], kv[1]);
        }
        byte[] prefix = "out:".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp); KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
            p.initTransactions();
            Set<TopicPartition> inParts = new HashSet<>();
            for (PartitionInfo pi : c.partitionsFor(in, Duration.ofSeconds(30))) inParts.add(new TopicPartition(in, pi.partition()));
            Map<TopicPartition, Long> end = c.endOffsets(inParts, Duration.ofSeconds(30));
            OUT.println("end " + offs(end));
            c.subscribe(List.of(in));
            int txn = 0;
            long deadline = System.currentTimeMillis() + 60000;
            while (true) {
                if (System.currentTimeMillis() > deadline) {
                    System.err.println("timeout: committed offsets " + offs(c.committed(inParts, Duration.ofSeconds(10))) + " end " + offs(end));
                    System.exit(3);
                }
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) {
                    if (c.assignment().equals(inParts)) {
                        Map<TopicPartition, OffsetAndMetadata> com = c.committed(inParts, Duration.ofSeconds(15));
                        boolean done = true;
                        for (TopicPartition tp : inParts) {
                            OffsetAndMetadata o = com.get(tp);
                            if (o == null || o.offset() < end.get(tp)) done = false;
                        }
                        if (done) break;
                    }
                    continue;
                }
                txn++;
                p.beginTransaction();
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    OUT.println("rec " + txn + " " + r.partition() + " " + r.offset() + " " + hex(r.value()));
                    byte[] v = new byte[prefix.length + r.value().length];
                    System.arraycopy(prefix, 0, v, 0, prefix.length);
                    System.arraycopy(r.value(), 0, v, prefix.length, r.value().length);
                    p.send(new ProducerRecord<>(out, r.key(), v));
                }
                Map<TopicPartition, OffsetAndMetadata> positions = new HashMap<>();
                for (TopicPartition tp : c.assignment()) positions.put(tp, new OffsetAndMetadata(c.position(tp)));
                p.sendOffsetsToTransaction(positions, c.groupMetadata());
                if (txn == abortAt) {
                    p.flush();  // the output reaches the log before the abort (else the client just drops it)
                    p.abortTransaction();
                    OUT.println("txn " + txn + " abort " + recs.count() + " " + offs(positions));
                    // as EOS applications do: rewind to the committed position and process again
                    Map<TopicPartition, OffsetAndMetadata> com = c.committed(c.assignment(), Duration.ofSeconds(15));
                    for (TopicPartition tp : c.assignment()) {
                        OffsetAndMetadata o = com.get(tp);
                        if (o == null) c.seekToBeginning(List.of(tp)); else c.seek(tp, o.offset());
                    }
                } else {
                    p.commitTransaction();
                    OUT.println("txn " + txn + " commit " + recs.count() + " " + offs(positions));
                }
                OUT.println("committed " + txn + " " + offs(c.committed(inParts, Duration.ofSeconds(15))));
            }
            OUT.println("final " + offs(c.committed(inParts, Duration.ofSeconds(15))));
        }
        OUT.println("done");
    }
}
