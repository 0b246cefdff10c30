package org.prilora.it.readme;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes a fresh consumer project from README.md: its {@code pom.xml} holds exactly the README's Maven snippet (the
 * fenced block between {@code <!-- install-snippet -->} and {@code <!-- /install-snippet -->}) as its only
 * dependencies, and its one source file is exactly the README's quick start (the fenced block between
 * {@code <!-- quickstart -->} and {@code <!-- /quickstart -->}). The tests module's build runs this in
 * {@code process-test-classes}; maven-invoker-plugin then builds the project against the artifacts of this reactor
 * and runs the program ({@code tests/pom.xml}), so the README's install instructions cannot rot.
 *
 * <p>The quick start is either a whole compilation unit (it declares a top-level class, whose name becomes the file
 * name and the main class) or a fragment of statements: then its {@code import} lines are moved to the top and the
 * rest becomes the body of {@code public static void main} of a class {@value #FRAGMENT_CLASS}.
 *
 * <p>Arguments, {@code key=value}: {@code readme}, {@code out} (the project directory, replaced),
 * {@code version} (this build's version: every {@code org.prilora} dependency in the snippet must ask for it),
 * {@code settings} (the settings file to write for the consumer build) and {@code outerRepository} (the outer
 * build's local repository, which those settings make the consumer build's only remote repository: a mirror of
 * everything, so it never reaches the network), and the plugin versions {@code compilerPlugin},
 * {@code resourcesPlugin}, {@code execPlugin}.
 */
public final class ReadmeConsumerProject {

    /** Start and end markers (HTML comments, invisible on GitHub) around the README's Maven snippet. */
    public static final String SNIPPET = "install-snippet";
    /** Start and end markers around the README's quick-start program. */
    public static final String QUICKSTART = "quickstart";
    /** The class a quick-start fragment is wrapped in. */
    public static final String FRAGMENT_CLASS = "ReadmeQuickStart";

    private static final Pattern TOP_LEVEL_CLASS =
            Pattern.compile("^(?:public\\s+)?(?:final\\s+)?(?:class|record)\\s+(\\w+)", Pattern.MULTILINE);
    private static final Pattern PACKAGE = Pattern.compile("^package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    private static final Pattern IMPORT = Pattern.compile("^\\s*import\\s+(static\\s+)?[\\w.]+(\\.\\*)?\\s*;\\s*$");
    private static final Pattern DEPENDENCY = Pattern.compile("<dependency>(.*?)</dependency>", Pattern.DOTALL);

    private ReadmeConsumerProject() {
    }

    /** A Java source file of the consumer project. */
    public record JavaSource(String packageName, String className, String text) {
        /** @return the path below {@code src/main/java} */
        public String relativePath() {
            return (packageName.isEmpty() ? "" : packageName.replace('.', '/') + "/") + className + ".java";
        }

        /** @return the fully qualified class name */
        public String mainClass() {
            return packageName.isEmpty() ? className : packageName + "." + className;
        }
    }

    /**
     * Writes the project; see the class comment for the arguments.
     *
     * @param args {@code key=value} pairs
     * @throws IOException if README.md cannot be read or the project cannot be written
     */
    public static void main(String[] args) throws IOException {
        Map<String, String> a = new LinkedHashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq < 1) {
                throw new IllegalArgumentException("expected key=value, got '" + arg + "'");
            }
            a.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Path readme = Path.of(require(a, "readme"));
        String markdown = Files.readString(readme, StandardCharsets.UTF_8);
        String snippet = fencedBlock(markdown, SNIPPET, "xml");
        checkVersions(snippet, require(a, "version"));
        JavaSource source = javaSource(fencedBlock(markdown, QUICKSTART, "java"));

        Path out = Path.of(require(a, "out"));
        deleteRecursively(out);
        Path src = out.resolve("src/main/java").resolve(source.relativePath());
        Files.createDirectories(src.getParent());
        Files.writeString(src, source.text(), StandardCharsets.UTF_8);
        Files.writeString(out.resolve("pom.xml"), pom(snippet, source.mainClass(), require(a, "compilerPlugin"),
                require(a, "resourcesPlugin"), require(a, "execPlugin")), StandardCharsets.UTF_8);
        Path settings = Path.of(require(a, "settings"));
        Files.createDirectories(settings.toAbsolutePath().getParent());
        Files.writeString(settings, settings(Path.of(require(a, "outerRepository"))), StandardCharsets.UTF_8);
        System.out.println("README consumer project: " + out + " (main class " + source.mainClass() + ", from "
                + readme + ")");
    }

    /**
     * @param markdown the README
     * @param marker   {@value #SNIPPET} or {@value #QUICKSTART}
     * @param language the fence's info string
     * @return the text of the one fenced block between {@code <!-- marker -->} and {@code <!-- /marker -->}, with
     *         its final newline
     */
    public static String fencedBlock(String markdown, String marker, String language) {
        String open = "<!-- " + marker + " -->";
        String close = "<!-- /" + marker + " -->";
        int start = markdown.indexOf(open);
        if (start < 0 || markdown.indexOf(open, start + 1) >= 0) {
            throw new IllegalStateException("README.md must contain '" + open + "' exactly once (found "
                    + (start < 0 ? "none" : "more than one") + "); it marks the block that the consumer check builds");
        }
        int end = markdown.indexOf(close, start);
        if (end < 0) {
            throw new IllegalStateException("README.md: '" + open + "' has no '" + close + "' after it");
        }
        String region = markdown.substring(start + open.length(), end).replace("\r\n", "\n");
        Matcher m = Pattern.compile("(?m)^```" + Pattern.quote(language) + "[ \\t]*\\n(.*?)^```[ \\t]*$", Pattern.DOTALL)
                .matcher(region);
        if (!m.find()) {
            throw new IllegalStateException("README.md: between '" + open + "' and '" + close
                    + "' there must be one fenced ```" + language + " block");
        }
        String block = m.group(1);
        if (m.find()) {
            throw new IllegalStateException("README.md: between '" + open + "' and '" + close
                    + "' there is more than one fenced ```" + language + " block");
        }
        return block;
    }

    /**
     * Fails unless the snippet has at least one {@code org.prilora} dependency and all of them ask for this build's
     * version (the check builds against this reactor, so a stale README version would otherwise fail obscurely).
     *
     * @param snippet the README's Maven snippet
     * @param version this build's version
     */
    public static void checkVersions(String snippet, String version) {
        List<String> prilora = new ArrayList<>();
        Matcher m = DEPENDENCY.matcher(snippet);
        while (m.find()) {
            String dep = m.group(1);
            if ("org.prilora".equals(element(dep, "groupId"))) {
                String v = element(dep, "version");
                String coordinates = "org.prilora:" + element(dep, "artifactId") + ":" + v;
                if (!version.equals(v)) {
                    throw new IllegalStateException("README.md's install snippet asks for " + coordinates
                            + ", but this build is version " + version + ": update the snippet");
                }
                prilora.add(coordinates);
            }
        }
        if (prilora.isEmpty()) {
            throw new IllegalStateException("README.md's install snippet has no <dependency> with groupId org.prilora");
        }
    }

    /**
     * @param block the README's quick-start block
     * @return the source file: the block itself if it declares a top-level class, else the block wrapped in a
     *         {@code main} of {@value #FRAGMENT_CLASS}
     */
    public static JavaSource javaSource(String block) {
        Matcher cls = TOP_LEVEL_CLASS.matcher(block);
        if (cls.find()) {
            Matcher pkg = PACKAGE.matcher(block);
            return new JavaSource(pkg.find() ? pkg.group(1) : "", cls.group(1), block);
        }
        StringBuilder imports = new StringBuilder();
        StringBuilder body = new StringBuilder();
        for (String line : block.split("\n", -1)) {
            if (IMPORT.matcher(line).matches()) {
                imports.append(line.strip()).append('\n');
            } else {
                body.append("        ").append(line).append('\n');
            }
        }
        String text = "// The README's quick-start fragment, wrapped in a main method.\n" + imports + "\npublic class "
                + FRAGMENT_CLASS + " {\n    public static void main(String[] args) throws Exception {\n" + body
                + "    }\n}\n";
        return new JavaSource("", FRAGMENT_CLASS, text);
    }

    /**
     * @return a minimal consumer POM: Java 17, the snippet as its dependencies, {@code exec:exec} running the
     *         quick start in a fresh JVM
     */
    static String pom(String snippet, String mainClass, String compilerPlugin, String resourcesPlugin,
                      String execPlugin) {
        return """
                <?xml version="1.0" encoding="UTF-8"?>
                <!-- Written by org.prilora.it.readme.ReadmeConsumerProject from README.md (tests module); not edited by hand. -->
                <project xmlns="http://maven.apache.org/POM/4.0.0"
                         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
                  <modelVersion>4.0.0</modelVersion>
                  <groupId>org.example</groupId>
                  <artifactId>readme-consumer</artifactId>
                  <version>1.0</version>

                  <properties>
                    <maven.compiler.release>17</maven.compiler.release>
                    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
                  </properties>

                  <dependencies>
                <!-- README.md install-snippet, verbatim: -->
                %s
                  </dependencies>

                  <build>
                    <plugins>
                      <plugin>
                        <groupId>org.apache.maven.plugins</groupId>
                        <artifactId>maven-compiler-plugin</artifactId>
                        <version>%s</version>
                      </plugin>
                      <plugin>
                        <groupId>org.apache.maven.plugins</groupId>
                        <artifactId>maven-resources-plugin</artifactId>
                        <version>%s</version>
                      </plugin>
                      <plugin>
                        <groupId>org.codehaus.mojo</groupId>
                        <artifactId>exec-maven-plugin</artifactId>
                        <version>%s</version>
                        <configuration>
                          <executable>${java.home}/bin/java</executable>
                          <arguments>
                            <argument>-classpath</argument>
                            <classpath/>
                            <argument>%s</argument>
                          </arguments>
                        </configuration>
                      </plugin>
                    </plugins>
                  </build>
                </project>
                """.formatted(snippet.stripTrailing(), compilerPlugin, resourcesPlugin, execPlugin, mainClass);
    }

    /**
     * @param outerRepository the outer build's local repository
     * @return settings that send every remote request to that repository, so the consumer build never reaches the
     *         network; this reactor's SNAPSHOTs come from the consumer's own local repository (invoker:install puts
     *         them there), never from the outer one, which holds no remote SNAPSHOT metadata
     */
    static String settings(Path outerRepository) {
        return """
                <?xml version="1.0" encoding="UTF-8"?>
                <!-- Written by org.prilora.it.readme.ReadmeConsumerProject: the README consumer build's settings. -->
                <settings>
                  <mirrors>
                    <mirror>
                      <id>outer-local-repository</id>
                      <mirrorOf>*</mirrorOf>
                      <url>%1$s</url>
                    </mirror>
                  </mirrors>
                  <!-- a local repository keeps no checksums for some files (imported BOMs among them) -->
                  <profiles>
                    <profile>
                      <id>outer-local-repository</id>
                      <repositories>
                        <repository>
                          <id>central</id>
                          <url>%1$s</url>
                          <releases><checksumPolicy>ignore</checksumPolicy></releases>
                          <snapshots><enabled>false</enabled></snapshots>
                        </repository>
                      </repositories>
                      <pluginRepositories>
                        <pluginRepository>
                          <id>central</id>
                          <url>%1$s</url>
                          <releases><checksumPolicy>ignore</checksumPolicy></releases>
                          <snapshots><enabled>false</enabled></snapshots>
                        </pluginRepository>
                      </pluginRepositories>
                    </profile>
                  </profiles>
                  <activeProfiles>
                    <activeProfile>outer-local-repository</activeProfile>
                  </activeProfiles>
                </settings>
                """.formatted(outerRepository.toAbsolutePath().toUri());
    }

    private static String element(String xml, String name) {
        Matcher m = Pattern.compile("<" + name + ">\\s*(.*?)\\s*</" + name + ">", Pattern.DOTALL).matcher(xml);
        return m.find() ? m.group(1) : null;
    }

    private static String require(Map<String, String> args, String key) {
        String v = args.get(key);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException("missing argument " + key + "=...");
        }
        return v;
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted((x, y) -> y.getNameCount() - x.getNameCount()).toList()) {
                Files.delete(p);
            }
        }
    }
}
