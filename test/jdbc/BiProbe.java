// BiProbe: what a BI tool sees over JDBC.  Connects as the given role, lists
// the audit_log views and their columns with their comments through
// DatabaseMetaData (as Metabase, Tableau, DBeaver do), runs search() with
// parameters bound through a PreparedStatement and reads daily_counts.
// Usage: java -cp postgresql.jar:. BiProbe <jdbc-url> <user> <password>
import java.sql.*;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;

public class BiProbe {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
            DatabaseMetaData md = c.getMetaData();
            try (ResultSet v = md.getTables(null, "audit_log", "%", new String[] {"VIEW"})) {
                while (v.next()) {
                    String view = v.getString("TABLE_NAME");
                    System.out.println("VIEW " + view + " | " + v.getString("REMARKS"));
                    try (ResultSet col = md.getColumns(null, "audit_log", view, "%")) {
                        while (col.next()) {
                            System.out.println("COLUMN " + view + "." + col.getString("COLUMN_NAME") + " | "
                                + col.getString("TYPE_NAME") + " | " + col.getString("REMARKS"));
                        }
                    }
                }
            }
            String q = "SELECT event_type, actor, tenant, host(client_addr) AS addr, changed_columns"
                     + " FROM audit_log.search(usernames => ?, since => ?, ip_addresses => CAST(? AS cidr[]),"
                     + " statuses => ?, max_rows => ?)";
            try (PreparedStatement ps = c.prepareStatement(q)) {
                ps.setArray(1, c.createArrayOf("text", new String[] {"jdbc_alice", "nobody"}));
                ps.setObject(2, OffsetDateTime.of(2000, 1, 1, 0, 0, 0, 0, ZoneOffset.UTC));
                ps.setString(3, "{198.51.100.0/24}");
                ps.setArray(4, c.createArrayOf("text", new String[] {"success"}));
                ps.setInt(5, 10);
                try (ResultSet r = ps.executeQuery()) {
                    while (r.next()) {
                        System.out.println("SEARCH " + r.getString(1) + " | " + r.getString(2) + " | "
                            + r.getString(3) + " | " + r.getString(4) + " | " + r.getString(5));
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT day, category, event_type, status, events FROM audit_log.daily_counts"
                    + " WHERE event_type LIKE ? ORDER BY day, event_type, status")) {
                ps.setString(1, "jdbc.%");
                try (ResultSet r = ps.executeQuery()) {
                    while (r.next()) {
                        System.out.println("DAILY " + (r.getDate(1) != null) + " | " + r.getString(2) + " | "
                            + r.getString(3) + " | " + r.getString(4) + " | " + r.getLong(5));
                    }
                }
            }
            try (Statement st = c.createStatement()) {
                st.executeQuery("SELECT count(*) FROM audit_log.events");
                System.out.println("EVENTS_TABLE readable");
            } catch (SQLException e) {
                System.out.println("EVENTS_TABLE " + e.getSQLState());
            }
        }
    }
}
