/**
 * Reading and writing ND4J arrays in the
 * <a href="https://github.com/huggingface/safetensors">safetensors</a> format, so adapters
 * can be exchanged with the Hugging Face ecosystem. Entry point: {@link org.prilora.io.SafeTensors}.
 */
package org.prilora.io;
