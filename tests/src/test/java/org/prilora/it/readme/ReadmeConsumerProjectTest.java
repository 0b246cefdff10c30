package org.prilora.it.readme;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * How {@link ReadmeConsumerProject} reads README.md. The consumer build itself (compile and run) is the
 * maven-invoker-plugin execution in this module's POM.
 */
class ReadmeConsumerProjectTest {

    private static final String SNIPPET = """
            <dependency>
                <groupId>org.prilora</groupId>
                <artifactId>prilora-cpu</artifactId>
                <version>1.2.3</version>
            </dependency>
            """;

    @Test
    void readsTheMarkedFencedBlocksVerbatim() {
        String md = "# x\n<!-- install-snippet -->\n```xml\n" + SNIPPET + "```\n<!-- /install-snippet -->\n"
                + "<!-- quickstart -->\n\n```java\nclass A {}\n```\n\n<!-- /quickstart -->\n";

        assertThat(ReadmeConsumerProject.fencedBlock(md, ReadmeConsumerProject.SNIPPET, "xml")).isEqualTo(SNIPPET);
        assertThat(ReadmeConsumerProject.fencedBlock(md, ReadmeConsumerProject.QUICKSTART, "java"))
                .isEqualTo("class A {}\n");
    }

    @Test
    void namesWhatIsMissingOrAmbiguous() {
        assertThatThrownBy(() -> ReadmeConsumerProject.fencedBlock("no markers", "quickstart", "java"))
                .hasMessageContaining("'<!-- quickstart -->' exactly once (found none)");
        assertThatThrownBy(() -> ReadmeConsumerProject.fencedBlock(
                "<!-- quickstart -->\n<!-- quickstart -->\n", "quickstart", "java"))
                .hasMessageContaining("found more than one");
        assertThatThrownBy(() -> ReadmeConsumerProject.fencedBlock("<!-- quickstart -->\n```java\nx\n```\n",
                "quickstart", "java"))
                .hasMessageContaining("has no '<!-- /quickstart -->'");
        assertThatThrownBy(() -> ReadmeConsumerProject.fencedBlock(
                "<!-- quickstart -->\n```xml\nx\n```\n<!-- /quickstart -->", "quickstart", "java"))
                .hasMessageContaining("one fenced ```java block");
        assertThatThrownBy(() -> ReadmeConsumerProject.fencedBlock(
                "<!-- quickstart -->\n```java\nx\n```\n```java\ny\n```\n<!-- /quickstart -->", "quickstart", "java"))
                .hasMessageContaining("more than one fenced ```java block");
    }

    @Test
    void snippetMustAskForThisBuildsVersion() {
        ReadmeConsumerProject.checkVersions(SNIPPET, "1.2.3");
        assertThatThrownBy(() -> ReadmeConsumerProject.checkVersions(SNIPPET, "2.0.0"))
                .hasMessageContaining("asks for org.prilora:prilora-cpu:1.2.3, but this build is version 2.0.0");
        assertThatThrownBy(() -> ReadmeConsumerProject.checkVersions("<dependency><groupId>org.nd4j</groupId>"
                + "<artifactId>nd4j-native</artifactId><version>1</version></dependency>", "1"))
                .hasMessageContaining("no <dependency> with groupId org.prilora");
    }

    @Test
    void aWholeProgramIsKeptAndAFragmentIsWrappedInAMain() {
        ReadmeConsumerProject.JavaSource whole =
                ReadmeConsumerProject.javaSource("package a.b;\n\nimport java.util.List;\n\npublic class Demo {}\n");
        assertThat(whole.relativePath()).isEqualTo("a/b/Demo.java");
        assertThat(whole.mainClass()).isEqualTo("a.b.Demo");
        assertThat(whole.text()).isEqualTo("package a.b;\n\nimport java.util.List;\n\npublic class Demo {}\n");

        ReadmeConsumerProject.JavaSource fragment =
                ReadmeConsumerProject.javaSource("import java.util.List;\n\nList<String> s = List.of(\"x\");\n");
        assertThat(fragment.mainClass()).isEqualTo(ReadmeConsumerProject.FRAGMENT_CLASS);
        assertThat(fragment.text()).startsWith("// The README's quick-start fragment, wrapped in a main method.\n"
                        + "import java.util.List;\n\npublic class ReadmeQuickStart {\n")
                .contains("    public static void main(String[] args) throws Exception {\n")
                .contains("        List<String> s = List.of(\"x\");\n");
    }

    @Test
    void theReadmeHasBothBlocks() throws IOException {
        String md = Files.readString(Path.of("..", "README.md"), StandardCharsets.UTF_8);

        String snippet = ReadmeConsumerProject.fencedBlock(md, ReadmeConsumerProject.SNIPPET, "xml");
        assertThat(snippet).contains("<groupId>org.prilora</groupId>");
        assertThat(ReadmeConsumerProject.fencedBlock(md, ReadmeConsumerProject.QUICKSTART, "java")).isNotBlank();
    }
}
