package org.prilora.samples.data;

import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import javax.xml.XMLConstants;
import javax.xml.stream.XMLInputFactory;
import javax.xml.stream.XMLStreamConstants;
import javax.xml.stream.XMLStreamException;
import javax.xml.stream.XMLStreamReader;

/**
 * Reads the {@code <example>} elements of a LanguageTool grammar file as written, before any cleaning (which
 * {@link LanguageToolAcceptability} does). The internal DTD subset's entities are expanded; anything external is
 * refused.
 */
final class LanguageToolXml {

    private LanguageToolXml() {
    }

    /**
     * One {@code <example>} as written in the file, before any cleaning.
     *
     * @param ruleId      rule id (see {@link AcceptabilityExample#ruleId()})
     * @param text        full text, marker tags removed, whitespace as in the file
     * @param markerStart start of the marked span in {@code text}, valid when {@code markers == 1}
     * @param markerEnd   end (exclusive) of the marked span
     * @param markers     number of {@code <marker>} elements
     * @param correction  the {@code correction} attribute, or null
     * @param type        the {@code type} attribute, or null
     */
    record RawExample(String ruleId, String text, int markerStart, int markerEnd, int markers, String correction,
                      String type) {
    }

    static XMLInputFactory secureFactory() {
        // The JDK's own implementation, so a StAX provider elsewhere on the classpath cannot change behaviour.
        XMLInputFactory f = XMLInputFactory.newDefaultFactory();
        // The internal DTD subset must be read for its entities (&apostrophe; etc.) to resolve...
        f.setProperty(XMLInputFactory.SUPPORT_DTD, true);
        f.setProperty(XMLInputFactory.IS_REPLACING_ENTITY_REFERENCES, true);
        // ...but nothing external is ever loaded. External entities stay "supported" only so that one reaches the
        // resolver below and fails loudly; with support off the parser would silently expand it to nothing.
        f.setProperty(XMLInputFactory.IS_SUPPORTING_EXTERNAL_ENTITIES, true);
        f.setProperty(XMLConstants.ACCESS_EXTERNAL_DTD, "");
        f.setXMLResolver((publicId, systemId, baseUri, namespace) -> {
            throw new XMLStreamException("external entity or DTD refused: " + systemId
                    + " (only entities declared in the internal DTD subset are expanded)");
        });
        f.setProperty(XMLInputFactory.IS_COALESCING, true);
        f.setProperty(XMLInputFactory.IS_NAMESPACE_AWARE, false);
        return f;
    }

    static List<RawExample> parse(InputStream xml, String sourceName) {
        List<RawExample> out = new ArrayList<>();
        XMLStreamReader r = null;
        try {
            r = secureFactory().createXMLStreamReader(xml);
            String groupId = null;
            int ruleInGroup = 0;
            String ruleId = null;
            while (r.hasNext()) {
                int event = r.next();
                if (event == XMLStreamConstants.START_ELEMENT) {
                    switch (r.getLocalName()) {
                        case "rulegroup" -> {
                            groupId = r.getAttributeValue(null, "id");
                            ruleInGroup = 0;
                        }
                        case "rule" -> {
                            String own = r.getAttributeValue(null, "id");
                            if (groupId != null) {
                                ruleInGroup++;
                                ruleId = own != null ? own : groupId + "[" + ruleInGroup + "]";
                            } else {
                                ruleId = own;
                            }
                        }
                        case "example" -> {
                            String id = ruleId != null ? ruleId : groupId != null ? groupId : "(no rule)";
                            out.add(readExample(r, id, sourceName));
                        }
                        default -> {
                        }
                    }
                } else if (event == XMLStreamConstants.END_ELEMENT) {
                    switch (r.getLocalName()) {
                        case "rulegroup" -> {
                            groupId = null;
                            ruleId = null;
                        }
                        case "rule" -> ruleId = null;
                        default -> {
                        }
                    }
                }
            }
        } catch (XMLStreamException e) {
            throw new IllegalStateException("Could not parse LanguageTool grammar XML " + sourceName + ": "
                    + e.getMessage(), e);
        } finally {
            if (r != null) {
                try {
                    r.close();
                } catch (XMLStreamException ignored) {
                    // closing a reader over a caller-owned stream; nothing to recover
                }
            }
        }
        return out;
    }

    /** Reads from the {@code <example>} start tag to its end tag. */
    private static RawExample readExample(XMLStreamReader r, String ruleId, String sourceName)
            throws XMLStreamException {
        int line = r.getLocation().getLineNumber();
        String correction = r.getAttributeValue(null, "correction");
        String type = r.getAttributeValue(null, "type");
        StringBuilder text = new StringBuilder();
        int markers = 0;
        int start = -1;
        int end = -1;
        while (true) {
            int event = r.next();
            switch (event) {
                case XMLStreamConstants.CHARACTERS, XMLStreamConstants.CDATA, XMLStreamConstants.SPACE ->
                        text.append(r.getText());
                case XMLStreamConstants.ENTITY_REFERENCE -> throw new IllegalStateException("Unresolved entity &"
                        + r.getLocalName() + "; in <example> at line " + line + " of " + sourceName
                        + "; expected every entity to be declared in the internal DTD subset");
                case XMLStreamConstants.START_ELEMENT -> {
                    if (r.getLocalName().equals("marker")) {
                        markers++;
                        if (markers == 1) {
                            start = text.length();
                        }
                    }
                    // other inline elements (e.g. <em>) just contribute their text
                }
                case XMLStreamConstants.END_ELEMENT -> {
                    if (r.getLocalName().equals("marker") && markers == 1) {
                        end = text.length();
                    } else if (r.getLocalName().equals("example")) {
                        return new RawExample(ruleId, text.toString(), start, end, markers, correction, type);
                    }
                }
                case XMLStreamConstants.END_DOCUMENT -> throw new IllegalStateException("Unterminated <example> at"
                        + " line " + line + " of " + sourceName);
                default -> {
                    // comments, processing instructions: no text
                }
            }
        }
    }
}
