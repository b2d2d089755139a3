// Issue 22: creates the Kafka ACLs of deploy/generate.py (kafka_acls(), written by devstack/secure.py as TSV:
// principal, operation, resource type, name, pattern type) through the Admin API, in one JVM call.
// Run from source: java -cp '<kafka lib>/*' ApplyAcls.java BOOTSTRAP ADMIN_CLIENT_PROPERTIES ACLS_TSV
// The broker then holds exactly that list (ACLs not in it are deleted); prints how many it holds.
import java.io.FileInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class ApplyAcls {
    private static String upper(String s) {
        return s.replaceAll("([a-z])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[1])) {
            props.load(in);
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        List<AclBinding> bindings = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[2]))) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\t");
            ResourcePattern resource = new ResourcePattern(
                ResourceType.valueOf(upper(f[2])), f[3], PatternType.valueOf(upper(f[4])));
            AccessControlEntry entry = new AccessControlEntry(
                f[0], "*", AclOperation.valueOf(upper(f[1])), AclPermissionType.ALLOW);
            bindings.add(new AclBinding(resource, entry));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
            // exactly the list: an ACL the broker still holds from an older list (a kept cluster) is deleted
            Set<AclBinding> wanted = new HashSet<>(bindings);
            List<AclBindingFilter> stale = new ArrayList<>();
            for (AclBinding held : admin.describeAcls(AclBindingFilter.ANY).values().get()) {
                if (!wanted.contains(held)) {
                    stale.add(held.toFilter());
                }
            }
            if (!stale.isEmpty()) {
                admin.deleteAcls(stale).all().get();
            }
            System.out.println(admin.describeAcls(AclBindingFilter.ANY).values().get().size());
        }
    }
}
